//! Tasks.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct TasksQuery {
    pub(super) status: Option<String>,
    pub(super) cursor: Option<String>,
}

pub(super) const TASK_STATUSES: [(&str, &str); 4] = [
    ("open", "Open"),
    ("closed", "Closed"),
    ("cancelled", "Cancelled"),
    ("any", "All"),
];

/// Tasks and their progress.
pub async fn tasks(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<TasksQuery>,
) -> Page {
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    if !TASK_STATUSES.iter().any(|(v, _)| *v == status) {
        return Err(bad_request(format!("unknown status {status:?}")));
    }
    let page = crate::tasks::list(
        &state.db,
        &user.principal,
        &crate::tasks::TaskFilter {
            status: Some(status.clone()),
            limit: Some(100),
            cursor: q.cursor.clone(),
            ..Default::default()
        },
    )
    .await?;
    let names = site_names(&state.db, &user.principal.org_id).await?;
    let tasks = page
        .items
        .into_iter()
        .map(|t| TaskRow {
            title: if t.title.is_empty() {
                "(untitled)".into()
            } else {
                t.title.clone()
            },
            kind: t.kind.clone(),
            site: site_name(&names, Some(&t.site_id)),
            status: t.status.clone(),
            scans: t.scan_count,
            progress: if t.projection_pending {
                "scans being turned into events".into()
            } else {
                "up to date".into()
            },
            updated: when_text(&t.updated_at),
            id: t.id,
        })
        .collect();
    html(&TasksPage {
        chrome: chrome(&state, &user, &csrf, "/tasks").await?,
        more_href: page.next_cursor.map(|c| {
            format!(
                "/tasks?{}",
                query_string(&[("status", &status), ("cursor", &c)])
            )
        }),
        status,
        statuses: TASK_STATUSES.to_vec(),
        tasks,
    })
}
