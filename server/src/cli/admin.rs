//! `swt org …`, `swt site …`, `swt user …` and `swt device …`: manage organisations,
//! sites and identities from the command line.

use std::io::BufRead;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use swt_server::app;
use swt_server::auth::{Role, service};

use super::serve::CommonArgs;

/// `swt user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input (one line), never from
    /// the command line, so it stays out of shell history and process lists.
    Add(UserAdd),
    /// List the users of the organisation.
    List(OrgArgs),
    /// Disable a user and end all their sessions (scans they made stay attributed).
    Disable(UserDisable),
}

/// `swt device`.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a scanner at a site; prints its device id and Automerge actor id, which
    /// the app needs at set-up.
    Register(DeviceRegister),
    /// Disable a scanner: it cannot sign in, its sessions end, and running servers refuse
    /// its tokens within seconds (`auth.revocation_cache_ms`).
    Disable(DeviceId),
    /// Re-enable a disabled scanner (its user signs in on it again).
    Enable(DeviceId),
}

/// `swt org`.
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation; prints its id.
    Add(OrgAdd),
}

/// `swt site`.
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Add a site (warehouse, returns centre) to the organisation; prints its id.
    Add(SiteAdd),
    /// Set a site's time zone (events projected from now on carry its offset; events
    /// already recorded keep theirs).
    SetTimeZone(SiteTimeZone),
}

#[derive(Debug, Args)]
pub struct SiteTimeZone {
    #[command(flatten)]
    org: OrgArgs,
    /// The site (id or GLN).
    site: String,
    /// IANA time zone (`America/Chicago`).
    time_zone: String,
}

#[derive(Debug, Args)]
pub struct DeviceId {
    #[command(flatten)]
    org: OrgArgs,
    /// The device id (from `swt device register` or `GET /api/v1/devices`).
    id: String,
}

#[derive(Debug, Args)]
pub struct OrgAdd {
    #[command(flatten)]
    common: CommonArgs,
    /// The organisation's name.
    #[arg(long)]
    name: String,
    /// Its party GLN (13 digits, check digit verified), used for returns verification.
    #[arg(long)]
    gln: Option<String>,
}

#[derive(Debug, Args)]
pub struct SiteAdd {
    #[command(flatten)]
    org: OrgArgs,
    /// The site's name ("Memphis DC").
    #[arg(long)]
    name: String,
    /// The site's GLN (13 digits, check digit verified; unique worldwide).
    #[arg(long)]
    gln: String,
    /// Postal address.
    #[arg(long)]
    address: Option<String>,
    /// IANA time zone of the site (`America/Chicago`): EPCIS events carry the offset in
    /// force there on their date.
    #[arg(long, default_value = "UTC")]
    time_zone: String,
}

#[derive(Debug, Args)]
pub struct OrgArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Organisation id (needed only when the database holds several).
    #[arg(long)]
    org: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserAdd {
    #[command(flatten)]
    org: OrgArgs,
    /// Sign-in name.
    #[arg(long)]
    username: String,
    /// Role: picker, returns_clerk, manager or admin.
    #[arg(long)]
    role: Role,
    /// Name shown in the dashboard and audit trail (default: the user name).
    #[arg(long)]
    display_name: Option<String>,
    /// Site (id or GLN) the user works at; scanner roles need one.
    #[arg(long)]
    site: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserDisable {
    #[command(flatten)]
    common: CommonArgs,
    /// Sign-in name.
    username: String,
}

#[derive(Debug, Args)]
pub struct DeviceRegister {
    #[command(flatten)]
    org: OrgArgs,
    /// Site (id or GLN) the scanner works at.
    #[arg(long)]
    site: String,
    /// A name people recognise ("Memphis dock 3 scanner").
    #[arg(long)]
    name: String,
}

async fn open(common: &CommonArgs) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let config = common.load(Default::default())?;
    Ok(app::open_database(&config).await?)
}

/// Runs `swt user …`.
pub fn user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            UserCommand::Add(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let site = match &a.site {
                    Some(s) => Some(service::resolve_site(&conn, &org, s).await?.id),
                    None => None,
                };
                if matches!(a.role, Role::Picker | Role::ReturnsClerk) && site.is_none() {
                    anyhow::bail!("a {} works at a site: add --site", a.role.as_str());
                }
                let mut password = String::new();
                std::io::stdin().lock().read_line(&mut password)?;
                let password = password.trim_end_matches(['\r', '\n']);
                let user = service::add_user(
                    &conn,
                    &org,
                    site.as_deref(),
                    &a.username,
                    a.display_name.as_deref().unwrap_or(&a.username),
                    a.role,
                    password,
                )
                .await?;
                println!(
                    "added user {} ({}), id {}",
                    user.username,
                    user.role.as_str(),
                    user.id
                );
            }
            UserCommand::List(a) => {
                let conn = open(&a.common).await?;
                let org = service::resolve_org(&conn, a.org.as_deref()).await?;
                for (u, disabled) in service::list_users(&conn, &org).await? {
                    println!(
                        "{:<20} {:<14} {:<8} site {:<38} id {}",
                        u.username,
                        u.role.as_str(),
                        if disabled { "disabled" } else { "active" },
                        u.site_id.as_deref().unwrap_or("-"),
                        u.id
                    );
                }
            }
            UserCommand::Disable(a) => {
                let conn = open(&a.common).await?;
                service::disable_user(&conn, &a.username).await?;
                println!("disabled {}; their sessions are revoked", a.username);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `swt device …`.
pub fn device(cmd: DeviceCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            DeviceCommand::Register(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let site = service::resolve_site(&conn, &org, &a.site).await?;
                let device = service::register_device(&conn, &org, &site.id, &a.name).await?;
                println!("device id {}", device.id);
                println!("actor id  {}", device.actor_id);
                println!("site      {} ({})", site.name, site.gln);
            }
            DeviceCommand::Disable(a) => set_device(a, true).await?,
            DeviceCommand::Enable(a) => set_device(a, false).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn set_device(a: DeviceId, disabled: bool) -> anyhow::Result<()> {
    let conn = open(&a.org.common).await?;
    let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
    let device = service::set_device_disabled(&conn, &org, &a.id, disabled).await?;
    if disabled {
        println!(
            "disabled device {} ({}); its sessions are revoked",
            device.id, device.name
        );
    } else {
        println!("enabled device {} ({})", device.id, device.name);
    }
    Ok(())
}

/// Runs `swt org …`.
pub fn org(cmd: OrgCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            OrgCommand::Add(a) => {
                let conn = open(&a.common).await?;
                let org = service::add_org(&conn, &a.name, a.gln.as_deref()).await?;
                println!("added organisation {}, id {}", org.name, org.id);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Runs `swt site …`.
pub fn site(cmd: SiteCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            SiteCommand::Add(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let site = service::add_site(
                    &conn,
                    &org,
                    &a.name,
                    &a.gln,
                    a.address.as_deref(),
                    &a.time_zone,
                )
                .await?;
                println!(
                    "added site {} (GLN {}, time zone {}), id {}",
                    site.name, site.gln, site.time_zone, site.id
                );
            }
            SiteCommand::SetTimeZone(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let site = service::set_site_time_zone(&conn, &org, &a.site, &a.time_zone).await?;
                println!(
                    "site {} (GLN {}) is now in time zone {}",
                    site.name, site.gln, site.time_zone
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `swt integration`.
#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// Make an integration account for an ERP; prints its key, this once. The ERP sends
    /// it as `Authorization: Bearer swti_…` to `PUT /api/v1/orders/{kind}/{order_ref}`.
    Add(IntegrationAdd),
    /// List the organisation's integration accounts (revoked ones too).
    List(OrgArgs),
    /// Revoke an account: its key is refused from its next request on, by every server.
    Revoke(IntegrationId),
}

#[derive(Debug, Args)]
pub struct IntegrationAdd {
    #[command(flatten)]
    org: OrgArgs,
    /// A name people recognise ("SAP production").
    #[arg(long)]
    name: String,
}

#[derive(Debug, Args)]
pub struct IntegrationId {
    #[command(flatten)]
    org: OrgArgs,
    /// The account id (from `swt integration add` or `list`).
    id: String,
}

/// Runs `swt integration …`.
pub fn integration(cmd: IntegrationCommand) -> anyhow::Result<ExitCode> {
    use swt_server::auth::integration;
    super::serve::runtime()?.block_on(async move {
        match cmd {
            IntegrationCommand::Add(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let made = integration::add(&conn, &org, &a.name, "cli").await?;
                println!(
                    "integration account {} ({})",
                    made.account.id, made.account.name
                );
                println!("key: {}", made.key);
                println!("(shown this once: give it to the ERP now)");
            }
            IntegrationCommand::List(a) => {
                let conn = open(&a.common).await?;
                let org = service::resolve_org(&conn, a.org.as_deref()).await?;
                for v in integration::list(&conn, &org).await? {
                    println!(
                        "{:<38} {:<30} {}",
                        v.id,
                        v.name,
                        v.revoked_at
                            .map_or_else(|| "active".to_owned(), |t| format!("revoked {t}"))
                    );
                }
            }
            IntegrationCommand::Revoke(a) => {
                let conn = open(&a.org.common).await?;
                let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
                let v = integration::revoke(&conn, &org, &a.id).await?;
                println!("revoked integration account {} ({})", v.id, v.name);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
