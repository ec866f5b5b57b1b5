//! `/api/v1/auth/*`: sign in, refresh, sign out, and who am I.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::Principal;
use super::service::{self, AuthError};
use super::throttle::ClientAddr;
use crate::http::ApiError;
use crate::state::AppState;

/// The auth routes, to be nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/me", get(me))
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let (status, code) = match &err {
            AuthError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            AuthError::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            AuthError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "login_busy"),
            AuthError::WrongSite(_) => (StatusCode::FORBIDDEN, "wrong_site"),
            AuthError::InvalidRefresh => (StatusCode::UNAUTHORIZED, "invalid_refresh_token"),
            AuthError::RefreshReused => (StatusCode::UNAUTHORIZED, "refresh_token_reused"),
            AuthError::BadDevice(_) => (StatusCode::FORBIDDEN, "device_not_allowed"),
            AuthError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AuthError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AuthError::Token(_) | AuthError::Hash(_) | AuthError::Db(_) => {
                return ApiError::failure(err);
            }
        };
        ApiError::new(status, code, err.to_string())
    }
}

/// Sign-in request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
    /// The registered scanner signing in, for scanner sessions.
    #[serde(default)]
    device_id: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    addr: ClientAddr,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let result = service::login(
        &state.db,
        &state.keys,
        &state.throttle,
        addr,
        &req.username,
        &req.password,
        req.device_id.as_deref(),
    )
    .await;
    let retry_after_secs = match &result {
        Ok(session) => {
            tracing::info!(user = %session.user.id, device = ?req.device_id, "signed in");
            None
        }
        Err(AuthError::Throttled { retry_after_secs }) => {
            tracing::warn!(username = %req.username, client = %addr.0, "sign-in throttled");
            Some(*retry_after_secs)
        }
        // The hash queue drains in well under a second.
        Err(AuthError::Busy) => Some(1),
        Err(AuthError::InvalidCredentials) => {
            tracing::warn!(username = %req.username, client = %addr.0, "failed sign-in");
            None
        }
        Err(_) => None,
    };
    let mut response = match result {
        Ok(session) => Json(session).into_response(),
        Err(err) => ApiError::from(err).into_response(),
    };
    if let Some(v) = retry_after_secs.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    let session = service::refresh(&state.db, &state.keys, &req.refresh_token).await?;
    Ok(Json(session).into_response())
}

async fn logout(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    service::logout(&state.db, &req.refresh_token).await?;
    // The session's access tokens stop here at once, elsewhere within the cache time.
    state.status.forget();
    Ok(StatusCode::NO_CONTENT)
}

async fn me(principal: Principal) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user_id": principal.user_id,
        "organisation_id": principal.org_id,
        "site_id": principal.site_id,
        "role": principal.role,
        "device_id": principal.device_id,
    }))
}
