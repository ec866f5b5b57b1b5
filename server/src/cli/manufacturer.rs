//! `swt serials …`, `swt partner …`, `swt policy …`: the manufacturer data returns
//! verification answers from, and who may ask. Only wiring: `swt_server::serials`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use swt_server::app;
use swt_server::auth::service;
use swt_server::serials::store::{self, LotView, SerialView};
use swt_server::serials::{self, SerialStatus};
use swt_server::verification::decide::PolicyAction;
use swt_server::verification::partners::{self as admin, PolicyInput};

use super::serve::CommonArgs;

#[derive(Debug, Args)]
pub struct OrgArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Organisation id (needed only when the database holds several).
    #[arg(long)]
    pub org: Option<String>,
}

pub async fn open(common: &CommonArgs) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let config = common.load(Default::default())?;
    Ok(app::open_database(&config).await?)
}

/// `swt serials`.
#[derive(Debug, Subcommand)]
pub enum SerialsCommand {
    /// Show a held serial and its lot's facts.
    Show(SerialKey),
    /// Set a serial's status: active, decommissioned, suspect or illegitimate.
    Status(SetStatus),
    /// Mark a lot recalled by its manufacturer (`--undo` withdraws a mistaken recall).
    Recall(Recall),
    /// Record an FDA expiry extension for a whole lot (`--remove` takes it away).
    ExtendExpiry(ExtendExpiry),
}

#[derive(Debug, Args)]
pub struct SerialKey {
    #[command(flatten)]
    org: OrgArgs,
    /// GTIN (8, 12, 13 or 14 digits).
    #[arg(long)]
    gtin: String,
    /// Serial (AI 21).
    #[arg(long)]
    serial: String,
}

#[derive(Debug, Args)]
pub struct SetStatus {
    #[command(flatten)]
    key: SerialKey,
    /// The new status.
    #[arg(long, value_parser = parse_status)]
    status: SerialStatus,
}

#[derive(Debug, Args)]
pub struct LotKey {
    #[command(flatten)]
    org: OrgArgs,
    /// GTIN (8, 12, 13 or 14 digits).
    #[arg(long)]
    gtin: String,
    /// Lot (AI 10).
    #[arg(long)]
    lot: String,
}

#[derive(Debug, Args)]
pub struct Recall {
    #[command(flatten)]
    lot: LotKey,
    /// Withdraw the recall instead.
    #[arg(long)]
    undo: bool,
}

#[derive(Debug, Args)]
pub struct ExtendExpiry {
    #[command(flatten)]
    lot: LotKey,
    /// The new expiry, YYMMDD or YYYY-MM-DD.
    #[arg(long, required_unless_present = "remove")]
    expiry: Option<String>,
    /// Remove the extension instead.
    #[arg(long, conflicts_with = "expiry")]
    remove: bool,
}

fn parse_status(s: &str) -> Result<SerialStatus, String> {
    s.parse()
}

fn parse_action(s: &str) -> Result<PolicyAction, String> {
    s.parse()
}

fn print_serial(v: &SerialView) {
    println!("gtin        {}", v.gtin);
    println!("serial      {}", v.serial);
    println!("lot         {}", v.lot);
    println!(
        "expiry      {} ({})",
        v.expiry,
        v.expiry_date.as_deref().unwrap_or("?")
    );
    println!("status      {}", v.status.as_str());
    println!(
        "lot         {}{}",
        if v.lot_recalled {
            "recalled"
        } else {
            "not recalled"
        },
        v.lot_expiry_extended_to
            .as_deref()
            .map(|e| format!(", expiry extended to {e}"))
            .unwrap_or_default()
    );
    println!("source      {}", v.source);
    println!("updated at  {}", v.updated_at);
}

fn print_lot(v: &LotView) {
    println!(
        "lot {} of GTIN {}: {}{}; {} serials held ({} active, {} decommissioned, {} suspect, {} illegitimate)",
        v.lot,
        v.gtin,
        if v.recalled {
            "recalled"
        } else {
            "not recalled"
        },
        v.expiry_extended_to
            .as_deref()
            .map(|e| format!(", expiry extended to {e}"))
            .unwrap_or_default(),
        v.serials.total,
        v.serials.active,
        v.serials.decommissioned,
        v.serials.suspect,
        v.serials.illegitimate
    );
}

/// Runs `swt serials …`.
pub fn serials(cmd: SerialsCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            SerialsCommand::Show(k) => {
                let conn = open(&k.org.common).await?;
                let org = service::resolve_org(&conn, k.org.org.as_deref()).await?;
                let gtin = serials::parse_gtin(&k.gtin).map_err(anyhow::Error::msg)?;
                print_serial(&store::serial(&conn, &org, &gtin, &k.serial).await?);
            }
            SerialsCommand::Status(s) => {
                let k = s.key;
                let conn = open(&k.org.common).await?;
                let org = service::resolve_org(&conn, k.org.org.as_deref()).await?;
                let gtin = serials::parse_gtin(&k.gtin).map_err(anyhow::Error::msg)?;
                serials::check_serial(&gtin, &k.serial).map_err(anyhow::Error::msg)?;
                let v = store::set_status(&conn, &org, &gtin, &k.serial, s.status, "cli").await?;
                print_serial(&v);
            }
            SerialsCommand::Recall(r) => {
                let (conn, org, gtin) = lot_target(&r.lot).await?;
                print_lot(&store::set_recalled(&conn, &org, &gtin, &r.lot.lot, !r.undo).await?);
            }
            SerialsCommand::ExtendExpiry(e) => {
                let (conn, org, gtin) = lot_target(&e.lot).await?;
                let expiry = match (&e.expiry, e.remove) {
                    (Some(x), false) => Some(serials::parse_expiry(x).map_err(anyhow::Error::msg)?),
                    _ => None,
                };
                print_lot(
                    &store::set_expiry_extension(&conn, &org, &gtin, &e.lot.lot, expiry.as_deref())
                        .await?,
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn lot_target(
    k: &LotKey,
) -> anyhow::Result<(sea_orm::DatabaseConnection, String, swt_domain::gs1::Gtin)> {
    let conn = open(&k.org.common).await?;
    let org = service::resolve_org(&conn, k.org.org.as_deref()).await?;
    let gtin = serials::parse_gtin(&k.gtin).map_err(anyhow::Error::msg)?;
    serials::check_lot(&gtin, &k.lot).map_err(anyhow::Error::msg)?;
    Ok((conn, org, gtin))
}

/// `swt partner`.
#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Add a trading partner allowed to send verification requests. Prints its API key
    /// once: only a hash is kept.
    Add(PartnerAdd),
    /// List the trading partners.
    List(OrgArgs),
    /// Suspend a partner: its requests are refused until it is activated again.
    Suspend(PartnerGln),
    /// Activate a suspended partner again.
    Activate(PartnerGln),
}

#[derive(Debug, Args)]
pub struct PartnerAdd {
    #[command(flatten)]
    org: OrgArgs,
    /// The partner's party GLN (13 digits, the reqGLN of its requests).
    #[arg(long)]
    gln: String,
    /// The partner's name.
    #[arg(long)]
    name: String,
}

#[derive(Debug, Args)]
pub struct PartnerGln {
    #[command(flatten)]
    org: OrgArgs,
    /// The partner's GLN.
    gln: String,
}

/// Runs `swt partner …`.
pub fn partner(cmd: PartnerCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            PartnerCommand::Add(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let gln = admin::parse_gln(&a.gln)?;
                let new = admin::add_partner(&conn, &org, &gln, &a.name).await?;
                println!(
                    "added partner {} (GLN {}), id {}",
                    new.partner.name, new.partner.gln, new.partner.id
                );
                println!("key {}", new.key);
                println!(
                    "give the key to the partner now: it is not stored and cannot be shown again"
                );
            }
            PartnerCommand::List(o) => {
                let conn = open(&o.common).await?;
                let org = service::resolve_org(&conn, o.org.as_deref()).await?;
                for p in admin::list_partners(&conn, &org).await? {
                    println!(
                        "{}  {:<9}  {}  (id {}, added {})",
                        p.gln, p.status, p.name, p.id, p.created_at
                    );
                }
            }
            PartnerCommand::Suspend(p) => set_partner(p, false).await?,
            PartnerCommand::Activate(p) => set_partner(p, true).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn set_partner(p: PartnerGln, active: bool) -> anyhow::Result<()> {
    let conn = open(&p.org.common).await?;
    let org = service::resolve_org(&conn, p.org.org.as_deref()).await?;
    let gln = admin::parse_gln(&p.gln)?;
    let v = admin::set_partner_active(&conn, &org, &gln, active).await?;
    println!("partner {} (GLN {}) is {}", v.name, v.gln, v.status);
    Ok(())
}

/// `swt policy`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Set (create or replace) a manufacturer's policy for the GTINs under a prefix:
    /// how recalled, expired and suspect packs are answered. Each unset answer is
    /// `verified` (verified, with the fact as additional information).
    Set(PolicySet),
    /// List the policies.
    List(OrgArgs),
    /// Remove the policy of a prefix.
    Remove(PolicyRemove),
}

#[derive(Debug, Args)]
pub struct PolicySet {
    #[command(flatten)]
    org: OrgArgs,
    /// Leading digits of the GTIN-14s covered (usually the GS1 company prefix).
    #[arg(long)]
    prefix: String,
    /// The manufacturer's name.
    #[arg(long)]
    manufacturer: String,
    /// verified, manufacturer_policy or not_for_redistribution.
    #[arg(long, default_value = "verified", value_parser = parse_action)]
    recalled: PolicyAction,
    /// verified, manufacturer_policy or not_for_redistribution.
    #[arg(long, default_value = "verified", value_parser = parse_action)]
    expired: PolicyAction,
    /// verified, manufacturer_policy or not_for_redistribution.
    #[arg(long, default_value = "verified", value_parser = parse_action)]
    suspect: PolicyAction,
    /// Answer every mismatch with No_reason_provided instead of naming the element
    /// (lot, expiry) that differs.
    #[arg(long)]
    withhold_mismatch_detail: bool,
}

#[derive(Debug, Args)]
pub struct PolicyRemove {
    #[command(flatten)]
    org: OrgArgs,
    /// The GTIN prefix.
    prefix: String,
}

/// Runs `swt policy …`.
pub fn policy(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            PolicyCommand::Set(s) => {
                let conn = open(&s.org.common).await?;
                let org = service::resolve_org(&conn, s.org.org.as_deref()).await?;
                let v = admin::set_policy(
                    &conn,
                    &org,
                    &PolicyInput {
                        gtin_prefix: s.prefix,
                        manufacturer: s.manufacturer,
                        on_recalled: s.recalled,
                        on_expired: s.expired,
                        on_suspect: s.suspect,
                        disclose_mismatch: !s.withhold_mismatch_detail,
                    },
                )
                .await?;
                println!(
                    "policy for prefix {} ({}): recalled {}, expired {}, suspect {}",
                    v.gtin_prefix,
                    v.manufacturer,
                    v.on_recalled.as_str(),
                    v.on_expired.as_str(),
                    v.on_suspect.as_str()
                );
            }
            PolicyCommand::List(o) => {
                let conn = open(&o.common).await?;
                let org = service::resolve_org(&conn, o.org.as_deref()).await?;
                for v in admin::list_policies(&conn, &org).await? {
                    println!(
                        "{:<14}  recalled {:<22}  expired {:<22}  suspect {:<22}  {}",
                        v.gtin_prefix,
                        v.on_recalled.as_str(),
                        v.on_expired.as_str(),
                        v.on_suspect.as_str(),
                        v.manufacturer
                    );
                }
            }
            PolicyCommand::Remove(r) => {
                let conn = open(&r.org.common).await?;
                let org = service::resolve_org(&conn, r.org.org.as_deref()).await?;
                admin::remove_policy(&conn, &org, &r.prefix).await?;
                println!("policy for prefix {} removed", r.prefix.trim());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
