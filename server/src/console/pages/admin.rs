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
            site: site_name(&names, u.site_id.as_deref()),
            username: u.username,
            name: u.display_name,
            role: u.role.replace('_', " "),
            disabled,
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
        partners,
    })
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
    Ok(Redirect::to(&format!("/admin?{}", query_string(&[("notice", &notice)]))).into_response())
}
