//! Errors as HTTP responses: one place maps them to status codes and a JSON body
//! `{"code": "...", "message": "..."}` with a stable machine-readable code.

use std::error::Error as StdError;

use std::any::Any;

use axum::Json;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use swt_domain::api::ErrorBody;

/// Seconds a client is told to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u64 = 2;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    reason: Option<String>,
}

impl ApiError {
    /// An error with the given status, stable code and human message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }

    /// Adds a finer machine-readable reason (e.g. why a sync message was refused).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body as bytes (for places that embed it, like sync batches).
    pub fn body_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }

    /// The body, in the form scanners read it.
    fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.to_owned(),
            reason: self.reason.clone(),
            message: self.message.clone(),
        }
    }

    /// 503: a dependency (the database) is not available.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A failure of the server side: 503 `unavailable` (with `Retry-After`) when a
    /// database error in `err` or its sources says the database cannot be reached,
    /// else 500. Domain errors wrapping a [`DbErr`] go through here so that an outage is
    /// answered the same on every route.
    pub fn failure<E: StdError + 'static>(err: E) -> Self {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(&err);
        while let Some(c) = cause {
            if let Some(db) = c.downcast_ref::<DbErr>() {
                if crate::db::failure::unreachable(db) {
                    tracing::warn!(error = %err, "database unavailable");
                    return Self::unavailable("the database is unavailable; retry shortly");
                }
                break;
            }
            cause = c.source();
        }
        Self::internal(err)
    }

    /// 500: logged in full, answered without internals.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, Json(&body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // docs/sync-protocol.md: clients retry a 503 after this many seconds.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        Self::failure(err)
    }
}

/// Makes every error answer JSON `{code, message}`: what axum and tower-http answer on
/// their own (extractor rejections: 400 bad JSON, query or path, 415 missing
/// content-type, 422 JSON of the wrong shape, 413 body too large; 405 wrong method; 408
/// timeout) comes as plain text or nothing. The text is kept as the message; the code is
/// the status's (see [`code_for`]). Responses that are JSON already pass untouched.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // JSON already; or a console page, which a person reads (see `crate::console`).
    if content_type.contains("json") || content_type.starts_with("text/html") {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Rejection texts are one line; a larger body is not one of them.
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, default_message) = code_for(status);
    let message = if text.is_empty() {
        default_message.to_owned()
    } else {
        text
    };
    let mut json = ApiError::new(status, code, message).into_response();
    // Keep what the original said besides its body (Allow on a 405, for one).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !json.headers().contains_key(name)
        {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// The stable code (and a message when there is no text) of an error status that no
/// handler chose a code for.
fn code_for(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad_request", "malformed request"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "sign in first"),
        StatusCode::FORBIDDEN => ("forbidden", "not allowed"),
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed here (see the Allow header)",
        ),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "unsupported Content-Type for this route",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ("unprocessable", "the body does not fit this route"),
        StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "unavailable; retry shortly"),
        s if s.is_server_error() => ("internal", "internal error; see the server log"),
        _ => ("error", "request failed"),
    }
}

/// The answer to a request no route matches.
pub async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

/// The answer when a handler panicked (tower-http's `CatchPanicLayer`): a 500 like any
/// other, logged with the panic's message inside the request's span (so with its
/// request id), instead of a connection dropped without a word.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(format_args!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_are_503_with_retry_after() {
        let err = ApiError::from(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code(), "unavailable");
        let response = err.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(
            ApiError::from(DbErr::RecordNotInserted).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped: {0}")]
    struct Wrapped(#[source] DbErr);

    #[test]
    fn outage_inside_a_domain_error_is_found() {
        let err = ApiError::failure(Wrapped(DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::ConnectionClosed,
        )));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
