//! Browser sessions of the console: the API's own access and refresh tokens, kept in
//! HttpOnly, SameSite cookies; a CSRF token checked on every form; and the
//! security headers every console answer carries.
//!
//! Why the API's tokens: one sign-in path (the same throttle, password check and
//! revocation) and one notion of a session. A browser cannot keep a refresh token safely
//! in script, so both live in cookies script cannot read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use swt_domain::api::SignedIn;

use crate::auth::{Principal, Role, service};
use crate::state::AppState;

/// The access token (15 minutes).
pub const SESSION_COOKIE: &str = "swt_session";
/// The refresh token (rotated on use).
pub const REFRESH_COOKIE: &str = "swt_refresh";
/// The CSRF token every form echoes.
pub const CSRF_COOKIE: &str = "swt_csrf";
/// The form field that carries it.
pub const CSRF_FIELD: &str = "csrf";
/// Largest console form body read.
const MAX_FORM: usize = 64 << 10;
/// A refresh token already spent by this process is answered with the session it gave
/// for this long: two tabs whose access token expired together must not look like a
/// stolen refresh token (which ends the session).
const REFRESH_GRACE: Duration = Duration::from_secs(30);

/// The content security policy of every console answer: nothing but our own style sheet
/// and script; no inline script, no framing, forms only to ourselves.
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The manager or admin a console request is made by.
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    /// Who, with their organisation (every query filters by it).
    pub principal: Principal,
}

/// The CSRF token of this browser, for the forms a page renders.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Sessions this process refreshed a moment ago, by the hash of the spent refresh token.
#[derive(Default)]
pub struct RecentRefreshes {
    entries: Mutex<HashMap<String, (Instant, SignedIn)>>,
}

impl RecentRefreshes {
    fn get(&self, spent: &str) -> Option<SignedIn> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&crate::auth::service::hash_token(spent))
            .filter(|(at, _)| at.elapsed() < REFRESH_GRACE)
            .map(|(_, s)| s.clone())
    }

    fn put(&self, spent: &str, session: &SignedIn) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (at, _)| at.elapsed() < REFRESH_GRACE);
            entries.insert(
                crate::auth::service::hash_token(spent),
                (Instant::now(), session.clone()),
            );
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether the browser reached us over HTTPS (through a TLS-terminating proxy): then every
/// cookie is also `Secure`. Plain HTTP on loopback (the demo) cannot use `Secure`.
fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value, always HttpOnly; `max_age` 0 deletes it. The session cookies are
/// `SameSite=Lax`, so a link to a pack's page in an e-mail opens signed in (a cross-site
/// form post still carries none); the CSRF cookie is `Strict`.
fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    let same_site = if name == CSRF_COOKIE { "Strict" } else { "Lax" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_secs}{secure}"
    ))
    .ok()
}

/// The cookies that hold a session.
pub fn session_cookies(headers: &HeaderMap, s: &SignedIn) -> Vec<HeaderValue> {
    let secure = https(headers);
    [
        set_cookie(SESSION_COOKIE, &s.access_token, s.expires_in, secure),
        // The refresh token outlives the access token; the server's expiry still rules.
        set_cookie(REFRESH_COOKIE, &s.refresh_token, 30 * 24 * 3600, secure),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The cookies that end a session in the browser.
pub fn cleared_cookies(headers: &HeaderMap) -> Vec<HeaderValue> {
    let secure = https(headers);
    [SESSION_COOKIE, REFRESH_COOKIE]
        .into_iter()
        .filter_map(|n| set_cookie(n, "", 0, secure))
        .collect()
}

fn new_csrf_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Constant-time equality, so the comparison does not tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A console page that says why a request was refused, with its status.
fn refusal(status: StatusCode, title: &str, message: &str) -> Response {
    super::view::refusal_page(status, title, message)
}

/// Whether a cross-site request could have sent this: the browser says where it came from
/// (`Sec-Fetch-Site`, else `Origin`), and it must be us. No header at all is a non-browser
/// client, which cannot hold the cookies without the user's help.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            origin_host != Some(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Every console request: security headers on the answer; a CSRF token for the browser
/// (made on its first visit); on a form post, the token echoed in the form must match the
/// cookie and the request must come from our own pages, else 403 and nothing changes.
pub async fn guard(req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE);
    let secure = https(req.headers());
    let (req, issued) = match &existing {
        Some(t) => (with_token(req, t.clone()), None),
        None => match new_csrf_token() {
            Some(t) => (with_token(req, t.clone()), Some(t)),
            None => {
                return secured(refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "no randomness for a CSRF token; see the server log",
                ));
            }
        },
    };
    let req = if req.method() == Method::POST {
        match checked_form(req, existing.as_deref()).await {
            Ok(req) => req,
            Err(refused) => return secured(refused),
        }
    } else {
        req
    };
    let mut response = as_page(next.run(req).await).await;
    if let Some(t) = issued
        && let Some(v) = set_cookie(CSRF_COOKIE, &t, 7 * 24 * 3600, secure)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    secured(response)
}

/// A handler's error (the API's JSON `{code, message}`, or an extractor's plain-text
/// rejection) as a console page with the same status and message; `Retry-After` is kept.
async fn as_page(response: Response) -> Response {
    let status = response.status();
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if html || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
    let message = if message.trim().is_empty() {
        "the request failed".to_owned()
    } else {
        message
    };
    let mut page = super::error_page(status, &message);
    if let Some(v) = parts.headers.get(header::RETRY_AFTER) {
        page.headers_mut().insert(header::RETRY_AFTER, v.clone());
    }
    page
}

fn with_token(mut req: Request, token: String) -> Request {
    req.extensions_mut().insert(CsrfToken(token));
    req
}

async fn checked_form(req: Request, cookie_token: Option<&str>) -> Result<Request, Response> {
    let expired = || {
        refusal(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The page was open too long or came from elsewhere. Go back, reload the page and try again.",
        )
    };
    if cross_site(req.headers()) {
        tracing::warn!(path = %req.uri().path(), "cross-site form post refused");
        return Err(expired());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
        refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too much data",
            "The form sent more than the console accepts.",
        )
    })?;
    let sent = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    match (cookie_token, sent) {
        (Some(c), Some(s)) if same(c, &s) => Ok(Request::from_parts(parts, Body::from(bytes))),
        _ => {
            tracing::warn!(path = %parts.uri.path(), "form post without a matching CSRF token refused");
            Err(expired())
        }
    }
}

/// Adds the headers every console answer carries.
fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    // Pages hold one organisation's data: no shared or back-button cache.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Whether a role may use the console.
pub fn console_role(role: Role) -> bool {
    matches!(role, Role::Manager | Role::Admin)
}

/// Pages behind sign-in: finds the user from the session cookie (refreshing an expired
/// access token with the refresh cookie), sends a browser without a session to the
/// sign-in page, and refuses roles the console is not for.
pub async fn signed_in(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let mut renewed: Option<SignedIn> = None;
    let mut principal = match cookie(&headers, SESSION_COOKIE) {
        Some(t) => Principal::from_access_token(&state, &t).await.ok(),
        None => None,
    };
    if principal.is_none()
        && let Some(refresh) = cookie(&headers, REFRESH_COOKIE)
    {
        let session = match state.console_refreshes.get(&refresh) {
            Some(s) => Ok(s),
            None => service::refresh(&state.db, &state.keys, &refresh).await,
        };
        match session {
            Ok(s) => {
                state.console_refreshes.put(&refresh, &s);
                principal = Principal::from_access_token(&state, &s.access_token)
                    .await
                    .ok();
                renewed = Some(s);
            }
            Err(e) => tracing::info!(error = %e, "console session not renewed"),
        }
    }
    let Some(principal) = principal else {
        let mut response = to_sign_in(&req);
        for v in cleared_cookies(&headers) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        return response;
    };
    if !console_role(principal.role) {
        return refusal(
            StatusCode::FORBIDDEN,
            "Not for your role",
            "The console is for managers and administrators. Scanner users work on the scanner app.",
        );
    }
    req.extensions_mut().insert(ConsoleUser { principal });
    let mut response = next.run(req).await;
    if let Some(s) = renewed {
        for v in session_cookies(&headers, &s) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// 303 to the sign-in page, coming back here afterwards (pages only; a form post goes
/// back to the overview, since its data is gone).
fn to_sign_in(req: &Request) -> Response {
    let back = if req.method() == Method::GET {
        req.uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned()
    } else {
        "/".to_owned()
    };
    let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Where to go after signing in: only a path on this server (never `//host` or a URL),
/// else the overview. An open redirect would let a phishing link borrow our sign-in page.
pub fn local_target(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 2048 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("swt_csrf_x=no; swt_csrf=yes; other=1"),
        );
        assert_eq!(cookie(&h, CSRF_COOKIE).as_deref(), Some("yes"));
        assert_eq!(cookie(&h, SESSION_COOKIE), None);
    }

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(local_target(Some("/stock?gtin=1")), "/stock?gtin=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
        ] {
            assert_eq!(local_target(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_target(None), "/");
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_site(&h), "a non-browser client sends neither header");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!cross_site(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
    }

    #[test]
    fn csrf_comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
