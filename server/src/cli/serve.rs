//! `swt serve`, `swt demo` and `swt migrate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use swt_server::app::{self, Server};
use swt_server::config::{Config, LogFormat, Overrides};
use swt_server::{db, demo, telemetry};

/// Settings shared by `serve`, `demo` and `migrate`. Each can also come from a TOML file
/// (`--config`) and from the environment; a flag beats the environment, which beats the
/// file, which beats the default.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address and port to listen on. [file: listen] [default: 127.0.0.1:8080]
    #[arg(long, env = "SWT_LISTEN", value_name = "ADDR:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Seconds a request may run before it is answered 408.
    /// [file: request_timeout_secs] [default: 30]
    #[arg(long, env = "SWT_REQUEST_TIMEOUT", value_name = "SECONDS")]
    request_timeout: Option<u64>,
    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    /// [file: shutdown_timeout_secs] [default: 30]
    #[arg(long, env = "SWT_SHUTDOWN_TIMEOUT", value_name = "SECONDS")]
    shutdown_timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML file with settings (keys as in the README's configuration table).
    #[arg(long, env = "SWT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Database: `sqlite://FILE` (embedded, the default is `sqlite://swt.db` in the current
    /// directory) or `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
    /// [file: database_url]
    #[arg(long, env = "SWT_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Most database connections to keep open. [file: db_max_connections] [default: 8]
    #[arg(long, env = "SWT_DB_MAX_CONNECTIONS", value_name = "N")]
    db_max_connections: Option<u32>,
    /// Log line format: `human` or `json` (one object per line, for log collectors).
    /// [file: log_format] [default: human]
    #[arg(long, env = "SWT_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Which log lines to write, e.g. `info`, `warn`, `info,swt_server=debug`.
    /// RUST_LOG, when set, wins. [file: log_level] [default: info]
    #[arg(long, env = "SWT_LOG", value_name = "FILTER")]
    log_level: Option<String>,
}

/// `swt migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    action: MigrateAction,
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Apply(CommonArgs),
    /// List migrations and whether each is applied; exits 1 when any is pending.
    Status(CommonArgs),
}

impl CommonArgs {
    /// The configuration from the file, environment and these flags.
    pub fn load(&self, extra: Overrides) -> anyhow::Result<Config> {
        let overrides = Overrides {
            database_url: self.database_url.clone(),
            db_max_connections: self.db_max_connections,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            ..extra
        };
        let config = Config::load(self.config.as_deref(), overrides)?;
        telemetry::init(config.log_format, &config.log_level)?;
        Ok(config)
    }
}

/// A multi-threaded runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs the server; with `seed_demo`, first seeds the demo data and prints the logins.
pub fn serve(args: ServeArgs, seed_demo: bool) -> anyhow::Result<ExitCode> {
    let config = args.common.load(Overrides {
        listen: args.listen,
        request_timeout_secs: args.request_timeout,
        shutdown_timeout_secs: args.shutdown_timeout,
        ..Overrides::default()
    })?;
    runtime()?.block_on(async move {
        tracing::info!(config = %config.redacted(), "starting swt {}", env!("CARGO_PKG_VERSION"));
        let db = app::open_database(&config).await?;
        let server = Server::bind(config, db.clone()).await?;
        let addr = server.local_addr()?;
        if seed_demo {
            let report = demo::seed_with_activity(&db).await?;
            print_demo(addr, report.inserted + report.tasks_created);
            print_activity(&demo::summary(&db).await?);
        }
        tracing::info!(%addr, "listening on http://{addr}");
        server.run(app::shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

fn print_demo(addr: std::net::SocketAddr, inserted: usize) {
    let fresh = if inserted == 0 {
        "demo data already present"
    } else {
        "demo data seeded"
    };
    println!("swt demo: {fresh}. Server: http://{addr}");
    println!(
        "Organisation: Northbridge Pharma Logistics (sites: Memphis DC GLN 0614141000012, Louisville Returns GLN 0614141000029)"
    );
    println!("Logins (demo only, change them before real use):");
    for login in &demo::LOGINS {
        println!(
            "  {:<14} user {:<9} password {}",
            login.role.as_str(),
            login.username,
            login.password
        );
    }
    println!("Scanners (device ids for the app's set-up):");
    for (id, _, name, _) in &demo::DEVICES {
        println!("  {name:<27} {id}");
    }
    println!(
        "Verification trading partner (demo only): {} GLN {} key {}",
        demo::PARTNER_NAME,
        demo::PARTNER_GLN,
        demo::PARTNER_KEY
    );
    println!("Manufacturer data: lots and serials (swt serials show, GET /api/v1/serials/...):");
    for l in &demo::LOTS {
        println!(
            "  GTIN {} lot {:<9} expiry {} serials {}..{}{}{}",
            l.gtin,
            l.lot,
            l.expiry,
            l.first_serial,
            l.first_serial + l.count - 1,
            if l.recalled { ", recalled" } else { "" },
            l.extended_to
                .map(|e| format!(", expiry extended to {e}"))
                .unwrap_or_default()
        );
    }
    for (gtin, serial, status) in &demo::SERIAL_STATUSES {
        println!("  GTIN {gtin} serial {serial} is {}", status.as_str());
    }
}

fn print_activity(s: &demo::ActivitySummary) {
    let list = |v: &[(String, u64)]| {
        v.iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "Warehouse activity (three weeks): {} tasks ({} open), {} scans, {} EPCIS events",
        s.tasks, s.open_tasks, s.scans, s.events
    );
    println!("  Packs and cartons: {}", list(&s.objects));
    println!(
        "  Exceptions: {} open, {} resolved; return verifications: {}",
        s.exceptions_open,
        s.exceptions_resolved,
        list(&s.returns)
    );
}

/// `swt migrate apply|status`.
pub fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let (common, apply) = match &args.action {
        MigrateAction::Apply(common) => (common, true),
        MigrateAction::Status(common) => (common, false),
    };
    let config = common.load(Overrides::default())?;
    runtime()?.block_on(async move {
        let conn = db::connect(&config.database_url, config.db_max_connections).await?;
        if apply {
            db::migrate(&conn).await?;
            println!("all migrations applied");
            return Ok(ExitCode::SUCCESS);
        }
        let states = db::migration_status(&conn).await?;
        for s in &states {
            let state = if s.applied { "applied" } else { "pending" };
            println!("{state:<8} {}", s.name);
        }
        Ok(if states.iter().all(|s| s.applied) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
