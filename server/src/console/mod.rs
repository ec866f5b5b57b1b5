//! The manager's console: HTML pages served by `swt serve` itself at `/` (templates
//! compiled into the binary, one style sheet, no script), signed in with a browser session
//! for managers and admins of one organisation. See docs/console.md.

mod pages;
mod report;
pub mod search;
pub mod session;
mod view;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::state::AppState;

/// The style sheet, compiled in.
const STYLE: &str = include_str!("static/console.css");

/// The console's routes, with their session, CSRF and security-header middleware.
pub fn routes(state: &AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route("/", get(pages::overview))
        .route("/search", get(pages::search))
        .route("/units/{id}", get(pages::unit))
        .route("/units/{id}/report", get(pages::unit_report))
        .route("/units/{id}/report.csv", get(pages::unit_report_csv))
        .route("/units/{id}/epcis", get(pages::unit_epcis))
        .route("/containers/{sscc}", get(pages::container))
        .route("/stock", get(pages::stock))
        .route("/lots/{gtin}/{lot}", get(pages::lot))
        .route("/lots/{gtin}/{lot}/report", get(pages::lot_report))
        .route("/lots/{gtin}/{lot}/report.csv", get(pages::lot_report_csv))
        .route("/exceptions", get(pages::exceptions))
        .route("/exceptions/{id}/resolve", post(pages::resolve_exception))
        .route("/devices", get(pages::devices))
        .route("/devices/{id}/disable", post(pages::disable_device))
        .route("/devices/{id}/enable", post(pages::enable_device))
        .route("/tasks", get(pages::tasks))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::signed_in,
        ));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .merge(signed_in)
        .route_layer(middleware::from_fn(session::guard))
        .route("/static/console.css", get(style))
}

async fn style() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        STYLE,
    )
        .into_response()
}

/// A console refusal page from an API error's status and message (see
/// [`session::guard`]).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::BAD_REQUEST => "That did not work",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Already done",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable; try again shortly",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        _ => "Something went wrong",
    };
    view::refusal_page(status, title, message)
}

/// The console's routes as OpenAPI path items: HTML for a browser with a session cookie,
/// not an API (so no bearer token), listed so that every route is described.
pub fn openapi_paths() -> Vec<(String, Value)> {
    let html = |d: &str| json!({"description": d, "content": {"text/html": {"schema": {"type": "string"}}}});
    let redirect = json!({"description": "to the sign-in page (no session), or onwards after a form",
        "headers": {"Location": {"schema": {"type": "string"}}}});
    let timeout = json!({"description": "took longer than the request timeout",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let param =
        |n: &str| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}});
    let q = |n: &str| json!({"name": n, "in": "query", "required": false, "schema": {"type": "string"}});
    let page = |summary: &str, params: Vec<Value>, ok: Value| {
        json!({"get": {"tags": ["console"], "summary": summary, "security": [{"console_session": []}],
            "parameters": params,
            "responses": {"200": ok, "303": redirect.clone(),
                "400": html("a malformed identifier or filter"),
                "403": html("a role the console is not for"),
                "404": html("nothing of that name in the organisation"),
                "408": timeout.clone(),
                "500": html("internal error (logged with the request id)"),
                "503": html("the database is unavailable")}}})
    };
    let form = |summary: &str, params: Vec<Value>, fields: Value| {
        json!({"post": {"tags": ["console"], "summary": summary, "security": [{"console_session": []}],
            "parameters": params,
            "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded":
                {"schema": {"type": "object", "properties": fields, "required": ["csrf"]}}}},
            "responses": {"303": redirect.clone(),
                "400": html("the form is incomplete"),
                "403": html("no matching CSRF token, a cross-site post, or a role not allowed"),
                "404": html("nothing of that name in the organisation"),
                "409": html("already done by someone else"),
                "413": html("the form is too large"),
                "408": timeout.clone(),
                "500": html("internal error (logged with the request id)"),
                "503": html("the database is unavailable")}}})
    };
    let s = json!({"type": "string"});
    let csv =
        json!({"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}});
    vec![
        (
            "/".into(),
            page("console: overview", vec![], html("the overview")),
        ),
        (
            "/login".into(),
            json!({
            "get": {"tags": ["console"], "summary": "console: sign-in form", "parameters": [q("next")],
                "responses": {"200": html("the form")}},
            "post": {"tags": ["console"], "summary": "console: sign in (managers, admins)",
                "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded":
                    {"schema": {"type": "object", "properties": {"csrf": s, "username": s, "password": s, "next": s},
                                "required": ["csrf", "username", "password"]}}}},
                "responses": {"303": redirect.clone(), "400": html("the form is incomplete"),
                    "401": html("wrong user name or password"),
                    "403": html("a role the console is not for, or no matching CSRF token"),
                    "413": html("the form is too large"),
                    "429": html("too many attempts"), "408": timeout.clone(),
                    "500": html("internal error (logged with the request id)"),
                    "503": html("busy or unavailable")}}}),
        ),
        (
            "/logout".into(),
            form("console: sign out", vec![], json!({"csrf": s})),
        ),
        (
            "/search".into(),
            page(
                "console: search anything scanned or typed",
                vec![q("q")],
                html("results"),
            ),
        ),
        (
            "/units/{id}".into(),
            page(
                "console: a pack or container and its history",
                vec![param("id"), q("cursor")],
                html("the page"),
            ),
        ),
        (
            "/units/{id}/report".into(),
            page(
                "console: printable trace report",
                vec![param("id")],
                html("the report"),
            ),
        ),
        (
            "/units/{id}/report.csv".into(),
            page(
                "console: trace report as CSV",
                vec![param("id")],
                csv.clone(),
            ),
        ),
        (
            "/units/{id}/epcis".into(),
            page(
                "console: EPCIS 2.0 download",
                vec![param("id")],
                json!({"description": "EPCISQueryDocument", "content": {"application/ld+json": {"schema": {"type": "object"}}}}),
            ),
        ),
        (
            "/containers/{sscc}".into(),
            page(
                "console: a container's tree",
                vec![param("sscc"), q("cursor")],
                html("the tree"),
            ),
        ),
        (
            "/stock".into(),
            page(
                "console: stock",
                [
                    "gtin",
                    "lot",
                    "status",
                    "site_id",
                    "expiry_before",
                    "cursor",
                ]
                .map(q)
                .to_vec(),
                html("stock"),
            ),
        ),
        (
            "/lots/{gtin}/{lot}".into(),
            page(
                "console: recall impact of a lot",
                vec![param("gtin"), param("lot"), q("cursor")],
                html("the lot"),
            ),
        ),
        (
            "/lots/{gtin}/{lot}/report".into(),
            page(
                "console: a lot's trace report",
                vec![param("gtin"), param("lot")],
                html("the report"),
            ),
        ),
        (
            "/lots/{gtin}/{lot}/report.csv".into(),
            page(
                "console: a lot's trace report as CSV",
                vec![param("gtin"), param("lot")],
                csv,
            ),
        ),
        (
            "/exceptions".into(),
            page(
                "console: exceptions work queue",
                vec![q("state"), q("cursor"), q("notice")],
                html("the queue"),
            ),
        ),
        (
            "/exceptions/{id}/resolve".into(),
            form(
                "console: resolve an exception",
                vec![param("id")],
                json!({"csrf": s, "resolution": s}),
            ),
        ),
        (
            "/devices".into(),
            page(
                "console: scanners and sync",
                vec![q("notice")],
                html("devices"),
            ),
        ),
        (
            "/devices/{id}/disable".into(),
            form(
                "console: disable a scanner (admins)",
                vec![param("id")],
                json!({"csrf": s}),
            ),
        ),
        (
            "/devices/{id}/enable".into(),
            form(
                "console: enable a scanner (admins)",
                vec![param("id")],
                json!({"csrf": s}),
            ),
        ),
        (
            "/tasks".into(),
            page(
                "console: tasks",
                vec![q("status"), q("cursor")],
                html("tasks"),
            ),
        ),
        (
            "/static/console.css".into(),
            json!({"get": {"tags": ["console"], "summary": "console style sheet",
            "responses": {"200": {"description": "CSS", "content": {"text/css": {"schema": {"type": "string"}}}}}}}),
        ),
    ]
}
