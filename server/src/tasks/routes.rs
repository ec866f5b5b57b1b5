//! `/api/v1/tasks`: create (managers), list and read (everyone, scoped to what they see).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use swt_domain::doc::TaskDocument;

use super::{CREATORS, CreateTask, TaskError, TaskFilter, TaskSummary};
use crate::auth::Principal;
use crate::http::ApiError;
use crate::state::AppState;

/// The task routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(list).post(create))
        .route("/tasks/{id}", get(detail))
        .route("/tasks/{id}/status", post(end))
}

impl From<TaskError> for ApiError {
    fn from(err: TaskError) -> Self {
        match &err {
            TaskError::Invalid(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", err.to_string())
            }
            TaskError::BadCursor(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", err.to_string())
            }
            TaskError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string())
            }
            TaskError::NotOpen(..) => {
                ApiError::new(StatusCode::CONFLICT, "task_not_open", err.to_string())
            }
            TaskError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", err.to_string())
            }
            TaskError::Damaged(..) | TaskError::Db(_) => ApiError::failure(err),
        }
    }
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateTask>,
) -> Result<(StatusCode, Json<TaskSummary>), ApiError> {
    principal.require(CREATORS)?;
    let task = super::create(&state.db, &state.server_actor, &principal, &req).await?;
    tracing::info!(task = %task.id, kind = %task.kind, site = %task.site_id, "task created");
    Ok((StatusCode::CREATED, Json(task)))
}

async fn end(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<super::EndTask>,
) -> Result<Json<TaskSummary>, ApiError> {
    principal.require(CREATORS)?;
    let task = super::end(
        &state.db,
        &state.documents,
        &state.server_actor,
        &principal,
        &id,
        &req,
    )
    .await?;
    tracing::info!(task = %task.id, status = %task.status, user = %principal.user_id, "task ended");
    Ok(Json(task))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(filter): Query<TaskFilter>,
) -> Result<Response, ApiError> {
    // A bare array, as scanners of sync protocol 1 read it; the cursor in a header.
    Ok(super::list(&state.db, &principal, &filter)
        .await?
        .into_array_response())
}

#[derive(Serialize)]
struct Line {
    gtin: String,
    quantity: u64,
    lot: Option<String>,
}

#[derive(Serialize)]
struct Unit {
    id: String,
    parent: Option<String>,
}

#[derive(Serialize)]
struct TaskDetail {
    #[serde(flatten)]
    summary: TaskSummary,
    refs: std::collections::BTreeMap<String, String>,
    lines: Vec<Line>,
    units: Vec<Unit>,
    voids: usize,
}

async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<TaskDetail>, ApiError> {
    let row = super::find_visible(&state.db, &principal, &id).await?;
    let summary = super::summary(&row);
    let actor = (*state.server_actor).clone();
    // The snapshot in the row plus the changes appended since.
    let bytes = match crate::tasks::documents::read(&state.db, &id).await {
        Ok(Some((_, bytes))) => bytes,
        Ok(None) => return Err(TaskError::NotFound(id).into()),
        Err(crate::tasks::documents::DocumentError::Db(e)) => return Err(TaskError::from(e).into()),
        Err(e) => return Err(TaskError::Damaged(id, e.to_string()).into()),
    };
    let detail = tokio::task::spawn_blocking(move || -> Result<TaskDetail, TaskError> {
        let damaged =
            |e: swt_domain::doc::DocError| TaskError::Damaged(row.id.clone(), e.to_string());
        let doc = TaskDocument::load(&bytes, actor).map_err(damaged)?;
        let header = doc.header().map_err(damaged)?;
        let expected = doc.expected().map_err(damaged)?;
        Ok(TaskDetail {
            summary,
            refs: header.refs,
            lines: expected
                .lines
                .into_iter()
                .map(|l| Line {
                    gtin: l.gtin.to_string(),
                    quantity: l.quantity,
                    lot: l.lot,
                })
                .collect(),
            units: expected
                .units
                .into_iter()
                .map(|u| Unit {
                    id: u.id,
                    parent: u.parent,
                })
                .collect(),
            voids: doc.voids().len(),
        })
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(detail))
}
