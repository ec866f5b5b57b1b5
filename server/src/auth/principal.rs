//! The authenticated caller of an API route, taken from the bearer token.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::revocation::Revoked;
use super::{Role, token};
use crate::http::ApiError;
use crate::state::AppState;

/// Who is calling. Every route that touches data filters by `org_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id.
    pub user_id: String,
    /// The user's organisation.
    pub org_id: String,
    /// The user's site, if bound to one.
    pub site_id: Option<String>,
    /// The user's role.
    pub role: Role,
    /// The device, for scanner sessions.
    pub device_id: Option<String>,
    /// The device's Automerge actor (hex), for scanner sessions.
    pub actor_id: Option<String>,
}

impl Principal {
    /// Refuses (403) unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("the {} role may not do this", self.role.as_str()),
            ))
        }
    }

    /// Whether the caller sees every site of the organisation.
    pub fn sees_all_sites(&self) -> bool {
        matches!(self.role, Role::Manager | Role::Admin)
    }
}

impl From<Revoked> for ApiError {
    fn from(r: Revoked) -> Self {
        // 403 where signing in again does not help; 401 (sign in again) where it does.
        let (status, code) = match r {
            Revoked::UserDisabled => (StatusCode::FORBIDDEN, "user_disabled"),
            Revoked::DeviceDisabled => (StatusCode::FORBIDDEN, "device_disabled"),
            Revoked::SessionEnded => (StatusCode::UNAUTHORIZED, "session_revoked"),
        };
        ApiError::new(status, code, r.to_string())
    }
}

impl Principal {
    /// The caller an access token names, once its signature, expiry and revocation
    /// (user or device disabled, session ended) are checked. The bearer header and the
    /// console's session cookie both come here.
    pub async fn from_access_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let claims = token::verify(&state.keys, &state.db, token)
            .await
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
        if let Err(revoked) = state.status.check(&state.db, &claims).await? {
            return Err(revoked.into());
        }
        Ok(Self {
            user_id: claims.sub,
            org_id: claims.org,
            site_id: claims.site,
            role: claims.role,
            device_id: claims.device,
            actor_id: claims.actor,
        })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |message: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned())
        };
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("sign in first: Authorization: Bearer <access token>"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("expected Authorization: Bearer <access token>"))?;
        Self::from_access_token(state, token.trim()).await
    }
}
