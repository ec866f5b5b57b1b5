//! Signing in and out.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    pub(super) next: Option<String>,
}

/// The sign-in form.
pub async fn login_form(
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<LoginQuery>,
) -> Response {
    render(
        StatusCode::OK,
        &LoginPage {
            csrf: csrf.0,
            next: local_target(q.next.as_deref()),
            username: String::new(),
            error: None,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub(super) username: String,
    pub(super) password: String,
    #[serde(default)]
    pub(super) next: Option<String>,
}

/// Signs in: the API's sign-in (throttle included), then the session cookies. Roles the
/// console is not for are refused here, and their new session ended at once.
pub async fn login(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    addr: crate::auth::throttle::ClientAddr,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let again = |status: StatusCode, error: String| {
        render(
            status,
            &LoginPage {
                csrf: csrf.0.clone(),
                next: local_target(form.next.as_deref()),
                username: form.username.chars().take(128).collect(),
                error: Some(error),
            },
        )
    };
    let result = auth::login(
        &state.db,
        &state.keys,
        &state.throttle,
        addr,
        &form.username,
        &form.password,
        None,
    )
    .await;
    let signed = match result {
        Ok(s) => s,
        Err(e) => {
            let api = ApiError::from(e);
            tracing::warn!(username = %form.username, code = api.code(), "console sign-in refused");
            let message = match api.code() {
                "invalid_credentials" => "Wrong user name or password.".to_owned(),
                _ => api.to_string(),
            };
            return again(api.status(), message);
        }
    };
    let allowed = signed
        .user
        .role
        .parse::<Role>()
        .is_ok_and(session::console_role);
    if !allowed {
        if let Err(e) = auth::logout(&state.db, &signed.refresh_token).await {
            tracing::warn!(error = %e, "ending a refused console session");
        }
        state.status.forget();
        return again(
            StatusCode::FORBIDDEN,
            format!(
                "The console is for managers and administrators; a {} works on the scanner app.",
                signed.user.role.replace('_', " ")
            ),
        );
    }
    tracing::info!(user = %signed.user.id, "signed in to the console");
    let mut response = Redirect::to(&local_target(form.next.as_deref())).into_response();
    for v in session::session_cookies(&headers, &signed) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Signs out: ends the session on the server (every token of it) and in the browser.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refresh) = session::cookie(&headers, session::REFRESH_COOKIE)
        && let Err(e) = auth::logout(&state.db, &refresh).await
    {
        tracing::warn!(error = %e, "console sign-out");
    }
    state.status.forget();
    let mut response = Redirect::to("/login").into_response();
    for v in session::cleared_cookies(&headers) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
