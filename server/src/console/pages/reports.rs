//! Trace reports and downloads.

use super::*;

/// A pack's or container's transaction history as a printable page.
pub async fn unit_report(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    let rows = report::unit_rows(&state, &user.principal.org_id, &id).await?;
    report_page(&state, &user, id.clone(), rows, unit_href(&id)).await
}

/// The same as CSV.
pub async fn unit_report_csv(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    let rows = report::unit_rows(&state, &user.principal.org_id, &id).await?;
    report::csv_response(&format!("trace-{}", id.replace(':', "-")), &rows.rows)
}

/// A lot's transaction history as a printable page.
pub async fn lot_report(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((gtin, lot)): Path<(String, String)>,
) -> Page {
    let rows = report::lot_rows(&state.db, &user.principal.org_id, &gtin, &lot).await?;
    report_page(
        &state,
        &user,
        format!("GTIN {gtin} lot {lot}"),
        rows,
        lot_href(&gtin, &lot),
    )
    .await
}

/// The same as CSV.
pub async fn lot_report_csv(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((gtin, lot)): Path<(String, String)>,
) -> Page {
    let rows = report::lot_rows(&state.db, &user.principal.org_id, &gtin, &lot).await?;
    report::csv_response(&format!("trace-{gtin}-{lot}"), &rows.rows)
}

/// The EPCIS 2.0 JSON-LD of a pack or container, as the API gives it, as a download.
pub async fn unit_epcis(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    let gcp = crate::epcis::gcp::GcpLengths::new(state.config.epcis.gcp_lengths.clone());
    let doc = trace::epcis_history(
        &state.db,
        &user.principal.org_id,
        &id,
        crate::epcis::render::EpcFormat::DigitalLink,
        &gcp,
    )
    .await?;
    let body = serde_json::to_vec_pretty(&doc).map_err(ApiError::internal)?;
    let name = format!("epcis-{}.jsonld", safe_file_name(&id));
    Ok((
        [
            (header::CONTENT_TYPE, "application/ld+json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A file name from an identifier: letters, digits, `-` and `.` only.
pub fn safe_file_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect()
}

pub(super) async fn report_page(
    state: &AppState,
    user: &ConsoleUser,
    subject: String,
    rows: report::Rows,
    back_href: String,
) -> Page {
    let org = crate::db::entity::organisation::Entity::find_by_id(user.principal.org_id.as_str())
        .one(&state.db)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let by = app_user::Entity::find_by_id(user.principal.user_id.as_str())
        .one(&state.db)
        .await?
        .map_or_else(|| user.principal.user_id.clone(), |u| u.display_name);
    html(&ReportPage {
        subject,
        organisation: org,
        produced: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        produced_by: by,
        truncated: rows.truncated,
        rows: rows.rows,
        csv_href: format!("{back_href}/report.csv"),
        back_href,
    })
}
