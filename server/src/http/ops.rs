//! Operations endpoints: liveness, readiness, metrics.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::{ApiError, AppState};
use crate::db;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
async fn healthz() -> &'static str {
    "ok\n"
}

/// The database answers and every migration is applied.
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    db::ready(&state.db).await.map_err(ApiError::unavailable)?;
    Ok("ready\n")
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pool = db::pool_state(&state.db, state.config.db_max_connections);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(pool),
    )
}
