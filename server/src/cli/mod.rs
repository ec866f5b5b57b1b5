//! Sub-commands of the `swt` binary: each only wires arguments to library calls.

mod admin;
pub mod gs1_check;
mod import;
mod manufacturer;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// swt — Smart Warehouse Traceability: keeps every serialized drug pack traceable
/// through your warehouses (GS1 barcodes, EPCIS 2.0, DSCSA/FMD).
#[derive(Debug, Parser)]
#[command(name = "swt", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (HTTP API for scanners and managers).
    ///
    /// With no settings at all, it keeps its data in the SQLite file `swt.db` in the
    /// current directory (created if missing), applies pending database migrations,
    /// and listens on http://127.0.0.1:8080.
    Serve(serve::ServeArgs),
    /// Like `serve`, but first fills the database with a demo warehouse operator
    /// (organisation, two sites, one user per role, a dozen products) and prints the
    /// logins. Safe to run again: nothing is duplicated.
    Demo(serve::ServeArgs),
    /// Apply or inspect database migrations without starting the server.
    Migrate(serve::MigrateArgs),
    /// Create organisations.
    #[command(subcommand)]
    Org(admin::OrgCommand),
    /// Add sites (with their GLN) to an organisation.
    #[command(subcommand)]
    Site(admin::SiteCommand),
    /// Manage users (add, list, disable).
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage scanners (register, disable, enable).
    #[command(subcommand)]
    Device(admin::DeviceCommand),
    /// ERP integration accounts (add, list, revoke): the credentials orders come with.
    #[command(subcommand)]
    Integration(admin::IntegrationCommand),
    /// GS1 barcode tools.
    #[command(subcommand)]
    Gs1(Gs1Command),
    /// Import manufacturer serials (CSV, EPCIS) for returns verification, the product
    /// master (CSV), or ERP orders (CSV).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Manufacturer serials and lots: show, set status, recall, extend expiry.
    #[command(subcommand)]
    Serials(manufacturer::SerialsCommand),
    /// Trading partners allowed to send verification requests (add, list, suspend).
    #[command(subcommand)]
    Partner(manufacturer::PartnerCommand),
    /// Manufacturers' answer policies for recalled, expired and suspect packs.
    #[command(subcommand)]
    Policy(manufacturer::PolicyCommand),
}

#[derive(Debug, Subcommand)]
enum Gs1Command {
    /// Check GS1 codes (element strings, bracketed, Digital Link URIs, plain GTINs/SSCCs).
    Check(gs1_check::CheckArgs),
}

/// Runs the chosen command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::serve(args, false),
        Command::Demo(args) => serve::serve(args, true),
        Command::Migrate(args) => serve::migrate(args),
        Command::Org(cmd) => admin::org(cmd),
        Command::Site(cmd) => admin::site(cmd),
        Command::User(cmd) => admin::user(cmd),
        Command::Device(cmd) => admin::device(cmd),
        Command::Integration(cmd) => admin::integration(cmd),
        Command::Gs1(Gs1Command::Check(args)) => gs1_check::run(args),
        Command::Import(cmd) => import::run(cmd),
        Command::Serials(cmd) => manufacturer::serials(cmd),
        Command::Partner(cmd) => manufacturer::partner(cmd),
        Command::Policy(cmd) => manufacturer::policy(cmd),
    }
}
