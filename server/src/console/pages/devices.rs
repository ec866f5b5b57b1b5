//! Scanners and their sync.

use super::*;

pub(super) struct DeviceFacts {
    pub(super) row: DeviceRow,
    pub(super) last_sync_at: Option<DateTime<Utc>>,
}

pub(super) async fn device_rows(
    db: &DatabaseConnection,
    org: &str,
    names: &HashMap<String, String>,
) -> Result<Vec<DeviceFacts>, ApiError> {
    let devices = auth::list_devices(db, org).await?;
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let last: HashMap<String, Option<DateTime<Utc>>> = sync_state::Entity::find()
        .select_only()
        .column(sync_state::Column::DeviceId)
        .column_as(Expr::col(sync_state::Column::UpdatedAt).max(), "last")
        .filter(sync_state::Column::DeviceId.is_in(ids.clone()))
        .group_by(sync_state::Column::DeviceId)
        .into_tuple::<(String, Option<DateTime<Utc>>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let week_ago = Utc::now() - chrono::Duration::days(7);
    let refusals: Vec<sync_refusal::Model> = sync_refusal::Entity::find()
        .filter(sync_refusal::Column::OrganisationId.eq(org))
        .filter(sync_refusal::Column::At.gte(week_ago))
        .order_by_desc(sync_refusal::Column::At)
        .limit(1000)
        .all(db)
        .await?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let mine: Vec<&sync_refusal::Model> =
                refusals.iter().filter(|r| r.device_id == d.id).collect();
            let last_sync_at = last.get(&d.id).copied().flatten();
            DeviceFacts {
                last_sync_at,
                row: DeviceRow {
                    site: site_name(names, Some(&d.site_id)),
                    disabled: d.disabled,
                    last_sync: last_sync_at.map_or_else(
                        || "never".to_owned(),
                        |t| t.format("%Y-%m-%d %H:%M").to_string(),
                    ),
                    unsent: d.unsent,
                    unsent_at: d
                        .unsent_reported_at
                        .as_deref()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_default(),
                    refusals: mine
                        .iter()
                        .map(|r| u64::try_from(r.occurrences).unwrap_or(1))
                        .sum(),
                    last_refusal: mine
                        .first()
                        .map(|r| format!("{}: {}", r.reason, r.detail))
                        .unwrap_or_default(),
                    name: d.name,
                    id: d.id,
                },
            }
        })
        .collect())
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    pub(super) notice: Option<String>,
}

/// Scanners: last sync, refusals, and (for admins) disable and enable.
pub async fn devices(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let names = site_names(&state.db, org).await?;
    let devices = device_rows(&state.db, org, &names)
        .await?
        .into_iter()
        .map(|d| d.row)
        .collect();
    html(&DevicesPage {
        chrome: chrome(&state, &user, &csrf, "/devices").await?,
        admin: user.principal.role == Role::Admin,
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        devices,
    })
}

/// Disables a scanner (admins): its sessions end at once.
pub async fn disable_device(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    id: Path<String>,
) -> Page {
    set_device(state, user, id, true).await
}

/// Enables a scanner again (admins): its user signs in again on it.
pub async fn enable_device(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    id: Path<String>,
) -> Page {
    set_device(state, user, id, false).await
}

pub(super) async fn set_device(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    disabled: bool,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let d = auth::set_device_disabled(&state.db, &user.principal.org_id, &id, disabled).await?;
    state.status.forget();
    tracing::info!(device = %d.id, disabled, by = %user.principal.user_id, "device changed in the console");
    let notice = format!(
        "{} is {}.",
        d.name,
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(with_notice("/devices", &notice))
}
