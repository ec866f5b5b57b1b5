//! The manager's console: HTML pages served by `swt serve` itself at `/` (templates
//! compiled into the binary, one style sheet, no script), signed in with a browser session
//! for managers and admins of one organisation. See docs/console.md.

mod charts;
mod pages;
mod report;
pub mod search;
pub mod session;
mod view;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use crate::state::AppState;

/// The style sheet, compiled in.
const STYLE: &str = include_str!("static/console.css");

/// The console's routes. Each method's handler gets the sign-in check and the CSRF and
/// header guard as its own layers (`route_layer` on the method router), so a method a
/// path does not serve is still a plain 405.
pub fn routes(state: &AppState) -> Router<AppState> {
    let guarded = |m: MethodRouter<AppState>| m.route_layer(middleware::from_fn(session::guard));
    let signed_in = |m: MethodRouter<AppState>| {
        guarded(m.route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::signed_in,
        )))
    };
    Router::new()
        .route("/login", guarded(get(pages::login_form).post(pages::login)))
        .route("/logout", guarded(post(pages::logout)))
        .route("/", signed_in(get(pages::overview)))
        .route("/search", signed_in(get(pages::search)))
        .route("/units/{id}", signed_in(get(pages::unit)))
        .route("/units/{id}/report", signed_in(get(pages::unit_report)))
        .route(
            "/units/{id}/report.csv",
            signed_in(get(pages::unit_report_csv)),
        )
        .route("/units/{id}/epcis", signed_in(get(pages::unit_epcis)))
        .route("/containers/{sscc}", signed_in(get(pages::container)))
        .route("/stock", signed_in(get(pages::stock)))
        .route("/lots/{gtin}/{lot}", signed_in(get(pages::lot)))
        .route(
            "/lots/{gtin}/{lot}/report",
            signed_in(get(pages::lot_report)),
        )
        .route(
            "/lots/{gtin}/{lot}/report.csv",
            signed_in(get(pages::lot_report_csv)),
        )
        .route("/exceptions", signed_in(get(pages::exceptions)))
        .route(
            "/exceptions/{id}/resolve",
            signed_in(post(pages::resolve_exception)),
        )
        .route(
            "/exceptions/{id}/assign",
            signed_in(post(pages::assign_exception)),
        )
        .route(
            "/exceptions/{id}/comment",
            signed_in(post(pages::comment_exception)),
        )
        .route("/devices", signed_in(get(pages::devices)))
        .route(
            "/devices/{id}/disable",
            signed_in(post(pages::disable_device)),
        )
        .route(
            "/devices/{id}/enable",
            signed_in(post(pages::enable_device)),
        )
        .route("/integrations", signed_in(get(pages::integrations)))
        .route(
            "/integrations/webhooks/{id}/replay",
            signed_in(post(pages::replay_webhook)),
        )
        .route("/tasks", signed_in(get(pages::tasks)))
        .route("/returns", signed_in(get(pages::returns)))
        .route("/returns/{scan_id}", signed_in(get(pages::return_detail)))
        .route("/admin", signed_in(get(pages::admin)))
        .route("/admin/users", signed_in(post(pages::add_user)))
        .route(
            "/admin/users/{id}/disable",
            signed_in(post(pages::disable_user)),
        )
        .route(
            "/admin/users/{id}/enable",
            signed_in(post(pages::enable_user)),
        )
        .route(
            "/admin/partners/{gln}/suspend",
            signed_in(post(pages::suspend_partner)),
        )
        .route(
            "/admin/partners/{gln}/activate",
            signed_in(post(pages::activate_partner)),
        )
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

/// What a console route answers with, for its OpenAPI description.
#[derive(Clone, Copy)]
enum Answer {
    /// An HTML page.
    Page,
    /// A form post answered with a redirect.
    Form,
    /// A CSV download.
    Csv,
    /// An EPCIS JSON-LD download.
    Epcis,
}

/// A described route: (method, path, summary, query parameters, form fields, answer).
/// Path parameters are read from the path.
type Described = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Answer,
);

/// The console's signed-in routes.
const DESCRIBED: &[Described] = &[
    ("get", "/", "overview", &[], &[], Answer::Page),
    ("post", "/logout", "sign out", &[], &[], Answer::Form),
    (
        "get",
        "/search",
        "search anything scanned or typed",
        &["q"],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/units/{id}",
        "a pack or container and its history",
        &["cursor"],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/units/{id}/report",
        "printable trace report",
        &[],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/units/{id}/report.csv",
        "trace report as CSV",
        &[],
        &[],
        Answer::Csv,
    ),
    (
        "get",
        "/units/{id}/epcis",
        "EPCIS 2.0 download",
        &[],
        &[],
        Answer::Epcis,
    ),
    (
        "get",
        "/containers/{sscc}",
        "a container's tree",
        &["cursor"],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/stock",
        "stock",
        &[
            "gtin",
            "lot",
            "status",
            "site_id",
            "location",
            "expiry_before",
            "cursor",
        ],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/lots/{gtin}/{lot}",
        "recall impact of a lot",
        &["cursor"],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/lots/{gtin}/{lot}/report",
        "a lot's trace report",
        &[],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/lots/{gtin}/{lot}/report.csv",
        "a lot's trace report as CSV",
        &[],
        &[],
        Answer::Csv,
    ),
    (
        "get",
        "/exceptions",
        "exceptions work queue",
        &["state", "cursor", "notice"],
        &[],
        Answer::Page,
    ),
    (
        "post",
        "/exceptions/{id}/resolve",
        "resolve an exception",
        &[],
        &["resolution"],
        Answer::Form,
    ),
    (
        "post",
        "/exceptions/{id}/assign",
        "assign an exception (empty: nobody)",
        &[],
        &["assignee"],
        Answer::Form,
    ),
    (
        "post",
        "/exceptions/{id}/comment",
        "comment on an exception",
        &[],
        &["note"],
        Answer::Form,
    ),
    (
        "get",
        "/devices",
        "scanners and sync",
        &["notice"],
        &[],
        Answer::Page,
    ),
    (
        "post",
        "/devices/{id}/disable",
        "disable a scanner (admins)",
        &[],
        &[],
        Answer::Form,
    ),
    (
        "post",
        "/devices/{id}/enable",
        "enable a scanner (admins)",
        &[],
        &[],
        Answer::Form,
    ),
    (
        "get",
        "/integrations",
        "webhook deliveries and the newest outcomes",
        &["notice"],
        &[],
        Answer::Page,
    ),
    (
        "post",
        "/integrations/webhooks/{id}/replay",
        "restart a webhook's delivery where it stopped (managers, admins)",
        &[],
        &[],
        Answer::Form,
    ),
    (
        "get",
        "/tasks",
        "tasks",
        &["status", "cursor"],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/returns",
        "returns verification log",
        &["state", "before"],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/returns/{scan_id}",
        "one returns verification and its LMS exchanges",
        &[],
        &[],
        Answer::Page,
    ),
    (
        "get",
        "/admin",
        "users and partners (admins)",
        &["notice"],
        &[],
        Answer::Page,
    ),
    (
        "post",
        "/admin/users",
        "add a user (admins)",
        &[],
        &["username", "display_name", "role", "site_id", "password"],
        Answer::Form,
    ),
    (
        "post",
        "/admin/users/{id}/disable",
        "disable a user and end their sessions (admins)",
        &[],
        &[],
        Answer::Form,
    ),
    (
        "post",
        "/admin/users/{id}/enable",
        "enable a user again (admins)",
        &[],
        &[],
        Answer::Form,
    ),
    (
        "post",
        "/admin/partners/{gln}/suspend",
        "suspend a trading partner (admins)",
        &[],
        &[],
        Answer::Form,
    ),
    (
        "post",
        "/admin/partners/{gln}/activate",
        "activate a trading partner (admins)",
        &[],
        &[],
        Answer::Form,
    ),
];

/// The console's routes as OpenAPI path items: HTML for a browser with a session cookie,
/// not an API (no bearer token), listed so that every route is described.
pub fn openapi_paths() -> Vec<(String, Value)> {
    let html = |d: &str| json!({"description": d, "content": {"text/html": {"schema": {"type": "string"}}}});
    let timeout = json!({"description": "took longer than the request timeout",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let redirect = json!({"description": "to the sign-in page (no session), or onwards after a form",
        "headers": {"Location": {"schema": {"type": "string"}}}});
    let form_body = |fields: &[&str], required: &[&str]| {
        let props: serde_json::Map<String, Value> = ["csrf"]
            .iter()
            .chain(fields)
            .map(|f| ((*f).to_owned(), json!({"type": "string"})))
            .collect();
        json!({"required": true, "content": {"application/x-www-form-urlencoded":
            {"schema": {"type": "object", "properties": props, "required": required}}}})
    };
    let mut paths: Vec<(String, Value)> = Vec::new();
    let mut add =
        |path: &str, method: &str, op: Value| match paths.iter_mut().find(|(p, _)| p == path) {
            Some((_, item)) => item[method] = op,
            None => paths.push((path.to_owned(), json!({ method: op }))),
        };
    for (method, path, summary, query, fields, answer) in DESCRIBED {
        let mut params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(query.iter().map(
            |n| json!({"name": n, "in": "query", "required": false, "schema": {"type": "string"}}),
        ));
        let ok = match answer {
            Answer::Page => html("the page"),
            Answer::Form => redirect.clone(),
            Answer::Csv => {
                json!({"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}})
            }
            Answer::Epcis => json!({"description": "EPCISQueryDocument",
                "content": {"application/ld+json": {"schema": {"type": "object"}}}}),
        };
        let mut responses = json!({
            "303": redirect.clone(),
            "400": html("a malformed identifier, filter or form"),
            "403": html("a role the console is not for, or (forms) no matching CSRF token or a cross-site post"),
            "404": html("nothing of that name in the organisation"),
            "408": timeout.clone(),
            "500": html("internal error (logged with the request id)"),
            "503": html("the database is unavailable")});
        let status = if matches!(answer, Answer::Form) {
            "303"
        } else {
            "200"
        };
        responses[status] = ok;
        let mut op = json!({"tags": ["console"], "summary": format!("console: {summary}"),
            "security": [{"console_session": []}], "parameters": params, "responses": responses});
        if *method == "post" {
            responses_for_forms(&mut op);
            op["requestBody"] = form_body(fields, &["csrf"]);
        }
        add(path, method, op);
    }
    add(
        "/login",
        "get",
        json!({"tags": ["console"], "summary": "console: sign-in form",
        "parameters": [{"name": "next", "in": "query", "required": false, "schema": {"type": "string"}}],
        "responses": {"200": html("the form")}}),
    );
    let mut login = json!({"tags": ["console"], "summary": "console: sign in (managers, admins)",
        "requestBody": form_body(&["username", "password", "next"], &["csrf", "username", "password"]),
        "responses": {"303": redirect, "400": html("the form is incomplete"),
            "401": html("wrong user name or password"),
            "403": html("a role the console is not for, no matching CSRF token, or a cross-site post"),
            "429": html("too many attempts"), "408": timeout,
            "500": html("internal error (logged with the request id)"),
            "503": html("busy or unavailable")}});
    responses_for_forms(&mut login);
    add("/login", "post", login);
    add(
        "/static/console.css",
        "get",
        json!({"tags": ["console"], "summary": "console style sheet",
        "responses": {"200": {"description": "CSS", "content": {"text/css": {"schema": {"type": "string"}}}}}}),
    );
    paths
}

/// What every form post may also answer: too large, conflicting (already done).
fn responses_for_forms(op: &mut Value) {
    op["responses"]["409"] = json!({"description": "already done by someone else",
        "content": {"text/html": {"schema": {"type": "string"}}}});
    op["responses"]["413"] = json!({"description": "the form is too large",
        "content": {"text/html": {"schema": {"type": "string"}}}});
    op["responses"]["422"] = json!({"description": "a form field is missing or malformed",
        "content": {"text/html": {"schema": {"type": "string"}}}});
}
