//! Users and trading partners (admins).

use super::*;

/// Users and trading partners (admins).
pub async fn admin(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let org = user.principal.org_id.as_str();
    let names = site_names(&state.db, org).await?;
    let users = auth::list_users(&state.db, org)
        .await?
        .into_iter()
        .map(|(u, disabled)| UserRow {
            me: u.id == user.principal.user_id,
            site: site_name(&names, u.site_id.as_deref()),
            username: u.username,
            name: u.display_name,
            role: u.role.replace('_', " "),
            disabled,
            id: u.id,
        })
        .collect();
    let sites = sites(&state.db, org)
        .await?
        .into_iter()
        .map(|s| SiteOption {
            id: s.id,
            name: s.name,
        })
        .collect();
    let partners = crate::verification::partners::list_partners(&state.db, org)
        .await?
        .into_iter()
        .map(|p| PartnerRow {
            since: when_text(&p.created_at),
            gln: p.gln,
            name: p.name,
            status: p.status,
        })
        .collect();
    html(&AdminPage {
        chrome: chrome(&state, &user, &csrf, "/admin").await?,
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        users,
        roles: ROLES.to_vec(),
        sites,
        partners,
    })
}

/// The roles an admin gives in the console, with their labels.
const ROLES: [(&str, &str); 4] = [
    ("picker", "Picker / receiver (scanner)"),
    ("returns_clerk", "Returns clerk (scanner)"),
    ("manager", "Manager (console)"),
    ("admin", "Administrator"),
];

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    username: String,
    display_name: String,
    role: String,
    #[serde(default)]
    site_id: String,
    password: String,
}

/// Adds a user (admins). The password is given to the person out of band; it is never
/// shown again.
pub async fn add_user(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    axum::Form(f): axum::Form<NewUserForm>,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let org = user.principal.org_id.as_str();
    let role: Role = f.role.parse().map_err(bad_request)?;
    // A site of this organisation only; a scanner user must have one.
    let site = match f.site_id.trim() {
        "" => None,
        s => Some(auth::resolve_site(&state.db, org, s).await?.id),
    };
    if site.is_none() && matches!(role, Role::Picker | Role::ReturnsClerk) {
        return Err(bad_request("a scanner user works at one site: choose it"));
    }
    let display = f.display_name.trim();
    if display.is_empty() || display.chars().count() > 200 {
        return Err(bad_request("the name must be 1 to 200 characters"));
    }
    let added = auth::add_user(
        &state.db,
        org,
        site.as_deref(),
        f.username.trim(),
        display,
        role,
        &f.password,
    )
    .await?;
    tracing::info!(user = %added.id, role = %added.role, by = %user.principal.user_id, "user added in the console");
    let notice = format!(
        "{} ({}) can sign in now.",
        added.display_name, added.username
    );
    Ok(with_notice("/admin", &notice))
}

/// Disables a user (admins): every session they hold ends at once.
pub async fn disable_user(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    id: Path<String>,
) -> Page {
    set_user(state, user, id, true).await
}

/// Enables a user again (admins).
pub async fn enable_user(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    id: Path<String>,
) -> Page {
    set_user(state, user, id, false).await
}

async fn set_user(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    disabled: bool,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    if disabled && id == user.principal.user_id {
        // Nobody locks the organisation out by a slip of the mouse.
        return Err(bad_request("you cannot disable yourself"));
    }
    let u = auth::set_user_disabled(&state.db, &user.principal.org_id, &id, disabled).await?;
    state.status.forget();
    tracing::info!(user = %u.id, disabled, by = %user.principal.user_id, "user changed in the console");
    let notice = format!(
        "{} is {}.",
        u.display_name,
        if disabled {
            "disabled; their sessions have ended"
        } else {
            "enabled"
        }
    );
    Ok(with_notice("/admin", &notice))
}

/// Suspends a trading partner (admins): its verification requests are refused.
pub async fn suspend_partner(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    gln: Path<String>,
) -> Page {
    set_partner(state, user, gln, false).await
}

/// Activates a trading partner again (admins).
pub async fn activate_partner(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    gln: Path<String>,
) -> Page {
    set_partner(state, user, gln, true).await
}

pub(super) async fn set_partner(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(gln): Path<String>,
    active: bool,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let g = crate::verification::partners::parse_gln(&gln)?;
    let p = crate::verification::partners::set_partner_active(
        &state.db,
        &user.principal.org_id,
        &g,
        active,
    )
    .await?;
    tracing::info!(partner = %p.gln, active, by = %user.principal.user_id, "partner changed in the console");
    let notice = format!(
        "{} is {}.",
        p.name,
        if active { "active" } else { "suspended" }
    );
    Ok(with_notice("/admin", &notice))
}
