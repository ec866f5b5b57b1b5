//! The exceptions work queue.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct ExceptionsQuery {
    pub(super) state: Option<String>,
    pub(super) cursor: Option<String>,
    pub(super) notice: Option<String>,
}

/// The exceptions work queue.
pub async fn exceptions(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ExceptionsQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let which = match q.state.as_deref() {
        None | Some("" | "open") => "open",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(bad_request(format!(
                "unknown state {other:?}: open or resolved"
            )));
        }
    };
    let page = trace::exceptions(
        db,
        org,
        &ExceptionQuery {
            state: Some(which.into()),
            kind: None,
            limit: Some(50),
            cursor: q.cursor.clone(),
        },
    )
    .await?;
    let names = site_names(db, org).await?;
    let people = people(db, org).await?;
    let person = |id: &str| {
        people
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    let ids: Vec<String> = page.items.iter().map(|e| e.id.clone()).collect();
    let mut notes: HashMap<String, Vec<NoteLine>> = HashMap::new();
    for n in trace::exception_notes(db, org, &ids).await? {
        notes
            .entry(n.exception_id.clone())
            .or_default()
            .push(NoteLine {
                when: when_ms(n.at_ms),
                who: person(&n.user_id),
                text: n.note,
            });
    }
    let now = Utc::now().timestamp_millis();
    let items = page
        .items
        .into_iter()
        .map(|e| {
            let raised = ms_of(&e.created_at).unwrap_or(now);
            let until = e.resolved_at.as_deref().and_then(ms_of).unwrap_or(now);
            ExceptionCard {
                kind: e.kind.replace('_', " "),
                site: site_name(&names, e.site_id.as_deref()),
                raised: when_text(&e.created_at),
                age: age(until - raised),
                object_href: e.object.as_deref().map(unit_href),
                object: e.object.unwrap_or_default(),
                detail: e.detail.to_string(),
                resolved_at: e.resolved_at.as_deref().map(when_text).unwrap_or_default(),
                resolved_by: e.resolved_by.as_deref().map(person).unwrap_or_default(),
                resolution: e.resolution,
                assigned: e.assigned_to.as_deref().map(person).unwrap_or_default(),
                notes: notes.remove(&e.id).unwrap_or_default(),
                id: e.id,
            }
        })
        .collect();
    html(&ExceptionsPage {
        chrome: chrome(&state, &user, &csrf, "/exceptions").await?,
        state: which.into(),
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        items,
        people,
        more_href: page.next_cursor.map(|c| {
            format!(
                "/exceptions?{}",
                query_string(&[("state", which), ("cursor", &c)])
            )
        }),
    })
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    pub(super) resolution: String,
}

/// Resolves an exception with what was done (who and when are recorded).
pub async fn resolve_exception(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResolveForm>,
) -> Page {
    let note = form.resolution.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(bad_request("say what was done (1 to 2,000 characters)"));
    }
    trace::resolve(
        &state.db,
        &user.principal.org_id,
        &id,
        &user.principal.user_id,
        note,
    )
    .await?;
    tracing::info!(exception = %id, by = %user.principal.user_id, "exception resolved in the console");
    Ok(Redirect::to(&format!(
        "/exceptions?{}",
        query_string(&[("notice", "Exception resolved.")])
    ))
    .into_response())
}

/// The organisation's managers and admins (who exceptions are assigned to).
pub(super) async fn people(db: &DatabaseConnection, org: &str) -> Result<Vec<Person>, ApiError> {
    Ok(app_user::Entity::find()
        .filter(app_user::Column::OrganisationId.eq(org))
        .filter(app_user::Column::Disabled.eq(false))
        .filter(app_user::Column::Role.is_in(["manager", "admin"]))
        .order_by_asc(app_user::Column::DisplayName)
        .all(db)
        .await?
        .into_iter()
        .map(|u| Person {
            id: u.id,
            name: u.display_name,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    pub(super) assignee: String,
}

/// Assigns an open exception (or takes the assignment away); recorded in its audit.
pub async fn assign_exception(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<AssignForm>,
) -> Page {
    let who = Some(form.assignee.trim()).filter(|a| !a.is_empty());
    trace::assign(
        &state.db,
        &user.principal.org_id,
        &id,
        &user.principal.user_id,
        who,
    )
    .await?;
    back_to_exception(&id, "Assignment saved.")
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    pub(super) note: String,
}

/// Adds a comment to an exception's audit.
pub async fn comment_exception(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CommentForm>,
) -> Page {
    trace::comment(
        &state.db,
        &user.principal.org_id,
        &id,
        &user.principal.user_id,
        &form.note,
    )
    .await?;
    back_to_exception(&id, "Comment added.")
}

pub(super) fn back_to_exception(id: &str, notice: &str) -> Page {
    let anchor: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(Redirect::to(&format!(
        "/exceptions?{}#x-{anchor}",
        query_string(&[("notice", notice)])
    ))
    .into_response())
}
