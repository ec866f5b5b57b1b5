//! The OpenAPI document served at `GET /openapi.json`: every route of the router.
//!
//! The trace and serials routes describe themselves (utoipa annotations next to their
//! handlers); the others are described here, in one table, so that route files owned by
//! other parts of the server need no annotations. Then one pass adds what every route
//! shares: the bearer security scheme and the error answers the HTTP edges can give
//! (`{code, message}` bodies: 400 for a malformed query, path or body, 401/403 on
//! authenticated routes, 404 with path parameters or a body, 408 timeout, 413/415/422 with a
//! body, 500, and 503 with `Retry-After` on routes that use the database).
//! `tests/tests/openapi_routes.rs` walks the router and fails on any route missing here.

use serde_json::{Map, Value, json};

/// Routes answered without a bearer token.
const PUBLIC: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/logout",
];

/// Routes that answer from memory and never touch the database.
const NO_DATABASE: &[&str] = &["/healthz", "/metrics", "/openapi.json", "/readyz"];

/// The whole document: `generated` (the self-describing routes, paths already under
/// `/api/v1`) completed with the other routes; `verify_base` is where the LMS responder
/// is mounted.
pub fn document(generated: &utoipa::openapi::OpenApi, verify_base: &str) -> Value {
    let mut doc = serde_json::to_value(generated).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "swt",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Smart Warehouse Traceability: serialized drug packs traced through a \
            pharmaceutical warehouse (DSCSA, FMD). Sign in at /api/v1/auth/login and send the \
            access token as `Authorization: Bearer`. Errors are JSON {code, message}; lists \
            are paged by `limit` (at most 500) and `cursor`.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
    });
    if !doc["paths"].is_object() {
        doc["paths"] = json!({});
    }
    for (path, item) in described(verify_base)
        .into_iter()
        .chain(crate::console::openapi_paths())
    {
        let slot = &mut doc["paths"][path.as_str()];
        if let (Some(slot), Value::Object(item)) = (slot.as_object_mut(), item.clone()) {
            slot.extend(item);
        } else {
            *slot = item;
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (_, op) in item.iter_mut() {
                complete(path, op);
            }
        }
    }
    let components = &mut doc["components"];
    if !components.is_object() {
        *components = json!({});
    }
    components["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "access token from /api/v1/auth/login (the LMS responder \
                                   takes a trading partner's key instead)"},
        "integration_key": {"type": "http", "scheme": "bearer",
                            "description": "an integration account's key (swti_…, from \
                                            POST /api/v1/integrations): the order and stock routes only"},
        "console_session": {"type": "apiKey", "in": "cookie", "name": "swt_session",
                            "description": "the console's browser session (sign in at /login)"}
    });
    if !components["schemas"].is_object() {
        components["schemas"] = json!({});
    }
    components["schemas"]["Error"] = json!({
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "stable machine-readable code"},
            "message": {"type": "string"},
            "reason": {"type": "string", "description": "finer reason (sync refusals)"},
        },
    });
    doc
}

/// Adds security and the shared error answers to one operation.
fn complete(path: &str, op: &mut Value) {
    let Some(op) = op.as_object_mut() else {
        return;
    };
    // The console's pages list their own (HTML) answers; they are not the API.
    if op["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "console"))
    {
        return;
    }
    let secured = !PUBLIC.contains(&path);
    if secured && !op.contains_key("security") {
        op.insert("security".into(), json!([{"bearer": []}]));
    }
    let has_path_params = path.contains('{');
    let has_params = has_path_params
        || op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
    let body_types: Vec<String> = op
        .get("requestBody")
        .and_then(|b| b["content"].as_object())
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default();
    let mut errors: Vec<(u16, &str)> = Vec::new();
    if path.starts_with("/api/") || !PUBLIC.contains(&path) {
        errors.push((408, "took longer than the request timeout"));
        errors.push((500, "internal error (logged with the request id)"));
    }
    if !NO_DATABASE.contains(&path) {
        errors.push((
            503,
            "the database is unavailable; retry after Retry-After seconds",
        ));
    }
    if has_params || !body_types.is_empty() {
        errors.push((400, "malformed query, path or body"));
    }
    if secured {
        errors.push((401, "no valid bearer token"));
        errors.push((403, "not allowed for this caller"));
    }
    // A body names things too (a site, a task, a device), which may not exist.
    if has_path_params || (path.starts_with("/api/") && !body_types.is_empty()) {
        errors.push((404, "no such resource in the caller's organisation"));
    }
    if !body_types.is_empty() {
        errors.push((413, "body too large"));
        errors.push((415, "unsupported Content-Type"));
    }
    if body_types.iter().any(|t| t.contains("json")) {
        errors.push((422, "JSON body of the wrong shape"));
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for (status, description) in errors {
        let entry = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": description}));
        if let Some(entry) = entry.as_object_mut() {
            entry.entry("content").or_insert_with(error_content);
            if status == 503 {
                entry.entry("headers").or_insert_with(|| {
                    json!({"Retry-After": {"description": "seconds to wait",
                                           "schema": {"type": "integer"}}})
                });
            }
        }
    }
}

fn error_content() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn text(description: &str, media: &str) -> Value {
    json!({"description": description, "content": {media: {"schema": {"type": "string"}}}})
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": error_content()})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description,
           "schema": {"type": "string"}})
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": schema})
}

fn paging(default: u64) -> [Value; 2] {
    [
        query(
            "limit",
            json!({"type": "integer", "minimum": 0, "default": default}),
            "page size (at most 500; more is taken as 500)",
        ),
        query(
            "cursor",
            json!({"type": "string"}),
            "the previous page's next cursor (X-Next-Cursor header)",
        ),
    ]
}

fn next_cursor_header() -> Value {
    json!({"X-Next-Cursor": {"description": "cursor of the next page; absent on the last",
                             "schema": {"type": "string"}}})
}

/// The routes that do not describe themselves.
fn described(verify_base: &str) -> Vec<(String, Value)> {
    let s = |t: &str| json!({"type": t});
    let nullable = |t: &str| json!({"type": [t, "null"]});
    let session = object(
        json!({
            "access_token": s("string"), "token_type": s("string"),
            "expires_in": s("integer"), "refresh_token": s("string"),
            "user": s("object"), "device": {"type": ["object", "null"]},
        }),
        &["access_token", "refresh_token", "user"],
    );
    let refresh_body = json_body(object(
        json!({"refresh_token": s("string")}),
        &["refresh_token"],
    ));
    let device = object(
        json!({"id": s("string"), "site_id": s("string"), "actor_id": s("string"),
               "name": s("string")}),
        &["id", "site_id", "actor_id", "name"],
    );
    let task = object(
        json!({
            "id": s("string"), "kind": s("string"), "site_id": s("string"),
            "status": s("string"), "title": nullable("string"), "scan_count": s("integer"),
            "version": s("integer"), "projection_pending": s("boolean"),
            "created_at": s("string"), "updated_at": s("string"),
        }),
        &["id", "kind", "site_id", "status"],
    );
    let refusal = object(
        json!({"id": s("string"), "document_id": s("string"), "device_id": s("string"),
               "user_id": s("string"), "reason": s("string"), "detail": s("string"),
               "at": s("string")}),
        &["id", "document_id", "reason"],
    );
    let verification = s("object");
    let binary = |description: &str, media: &str| {
        json!({"description": description,
               "content": {media: {"schema": {"type": "string", "format": "binary"}}}})
    };
    let [limit, cursor] = paging(100);
    let [rlimit, rcursor] = paging(100);
    vec![
        (
            "/healthz".into(),
            json!({"get": {"tags": ["operations"], "summary": "the process is up",
                "responses": {"200": text("ok", "text/plain")}}}),
        ),
        (
            "/readyz".into(),
            json!({"get": {"tags": ["operations"],
                "summary": "the database answers and every migration is applied",
                "responses": {"200": text("ready", "text/plain"),
                              "503": error("not ready")}}}),
        ),
        (
            "/metrics".into(),
            json!({"get": {"tags": ["operations"], "summary": "Prometheus/OpenMetrics text",
                "responses": {"200": text("metrics",
                    "application/openmetrics-text")}}}),
        ),
        (
            "/openapi.json".into(),
            json!({"get": {"tags": ["operations"], "summary": "this document",
                "responses": {"200": ok("OpenAPI 3.1", s("object"))}}}),
        ),
        (
            "/api/v1/auth/login".into(),
            json!({"post": {"tags": ["auth"], "summary": "sign in",
                "requestBody": json_body(object(json!({
                    "username": s("string"), "password": s("string"),
                    "device_id": nullable("string")}), &["username", "password"])),
                "responses": {"200": ok("a session", session.clone()),
                    "401": error("invalid_credentials"),
                    "403": error("device_not_allowed"),
                    "429": {"description": "too_many_attempts", "content": error_content(),
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}}}),
        ),
        (
            "/api/v1/auth/refresh".into(),
            json!({"post": {"tags": ["auth"], "summary": "a new token pair for a refresh token",
                "requestBody": refresh_body.clone(),
                "responses": {"200": ok("a session", session),
                    "401": error("invalid_refresh_token or refresh_token_reused")}}}),
        ),
        (
            "/api/v1/auth/logout".into(),
            json!({"post": {"tags": ["auth"], "summary": "end the session",
                "requestBody": refresh_body,
                "responses": {"204": {"description": "signed out"},
                    "401": error("invalid_refresh_token")}}}),
        ),
        (
            "/api/v1/me".into(),
            json!({"get": {"tags": ["auth"], "summary": "who the token is for",
                "responses": {"200": ok("the caller", object(json!({
                    "user_id": s("string"), "organisation_id": s("string"),
                    "site_id": nullable("string"), "role": s("string"),
                    "device_id": nullable("string")}), &["user_id", "role"]))}}}),
        ),
        (
            "/api/v1/devices".into(),
            json!({
                "get": {"tags": ["devices"], "summary": "registered scanners (managers, admins)",
                    "responses": {"200": ok("devices", json!({"type": "array", "items": device}))}},
                "post": {"tags": ["devices"], "summary": "register a scanner (admins)",
                    "requestBody": json_body(object(json!({"site": s("string"),
                        "name": s("string")}), &["site", "name"])),
                    "responses": {"201": ok("the device", device)}},
            }),
        ),
        (
            "/api/v1/tasks".into(),
            json!({
                "get": {"tags": ["tasks"],
                    "summary": "tasks the caller sees, newest first, one page",
                    "parameters": [
                        query("site_id", s("string"), "only this site"),
                        query("status", s("string"), "only this status (default open; any for all)"),
                        query("kind", s("string"), "only this kind"),
                        limit, cursor],
                    "responses": {"200": {"description": "a page of tasks",
                        "headers": next_cursor_header(),
                        "content": {"application/json": {"schema":
                            {"type": "array", "items": task.clone()}}}}}},
                "post": {"tags": ["tasks"], "summary": "create a task (managers, admins)",
                    "requestBody": json_body(object(json!({
                        "kind": s("string"), "site": s("string"), "title": nullable("string"),
                        "refs": {"type": "object", "additionalProperties": s("string")},
                        "expected": s("object")}), &["kind", "site"])),
                    "responses": {"201": ok("the task", task.clone())}},
            }),
        ),
        (
            "/api/v1/tasks/{id}".into(),
            json!({"get": {"tags": ["tasks"], "summary": "a task with its expected lines and units",
                "parameters": [path_param("id", "task (document) id")],
                "responses": {"200": ok("the task", s("object"))}}}),
        ),
        (
            "/api/v1/tasks/{id}/status".into(),
            json!({"post": {"tags": ["tasks"],
                "summary": "end a task: closed or cancelled (managers, admins); scanners learn it with their next sync and let it go",
                "parameters": [path_param("id", "task (document) id")],
                "requestBody": json_body(object(json!({"status": {"type": "string",
                    "enum": ["closed", "cancelled"]}}), &["status"])),
                "responses": {"200": ok("the task", task.clone()),
                    "400": error("invalid_request"),
                    "404": error("not_found"),
                    "409": error("task_not_open"),
                    "503": error("busy")}}}),
        ),
        (
            "/api/v1/sync/{document_id}".into(),
            json!({"post": {"tags": ["sync"],
                "summary": "one Automerge sync message for one task document (scanners)",
                "parameters": [path_param("document_id", "task (document) id")],
                "requestBody": {"required": true, "content": {"application/octet-stream":
                    {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "200": binary("the server's next sync message", "application/octet-stream"),
                    "204": {"description": "in sync"},
                    "400": error("malformed_sync_message"),
                    "403": error("sync_refused (with reason) or device_token_required"),
                    "503": error("busy or unavailable; retry after Retry-After")}}}),
        ),
        (
            "/api/v1/sync".into(),
            json!({"post": {"tags": ["sync"],
                "summary": "many documents in one round trip (docs/sync-protocol.md §4)",
                "requestBody": {"required": true, "content": {"application/vnd.swt.sync-batch":
                    {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {
                    "200": binary("one answer per item", "application/vnd.swt.sync-batch"),
                    "400": error("malformed_sync_batch")}}}),
        ),
        (
            "/api/v1/sync/refusals".into(),
            json!({"get": {"tags": ["sync"],
                "summary": "refused sync messages, newest first (managers, admins)",
                "parameters": [rlimit, rcursor],
                "responses": {"200": {"description": "a page of refusals",
                    "headers": next_cursor_header(),
                    "content": {"application/json": {"schema":
                        {"type": "array", "items": refusal}}}}}}}),
        ),
        (
            "/api/v1/returns/verify".into(),
            json!({"post": {"tags": ["returns"],
                "summary": "verify a returned pack while the clerk waits",
                "requestBody": json_body(object(json!({
                    "document_id": s("string"), "scan_id": s("string"), "gtin": s("string"),
                    "serial": s("string"), "lot": nullable("string"),
                    "expiry": nullable("string")}),
                    &["document_id", "scan_id", "gtin", "serial"])),
                "responses": {"200": ok("the verification", verification.clone()),
                    "404": error("no such task")}}}),
        ),
        (
            "/api/v1/returns/verifications".into(),
            json!({"get": {"tags": ["returns"],
                "summary": "verification records, newest first (returns clerks, managers, admins)",
                "parameters": [
                    query("state", json!({"type": "string",
                        "enum": <crate::returns::ReturnState as sea_orm::Iterable>::iter()
                            .map(|s| s.as_str()).collect::<Vec<_>>()}),
                        "only this state"),
                    query("limit", json!({"type": "integer", "minimum": 0}), "page size (at most 500)"),
                    query("before_ms", s("integer"), "the previous page's next_before_ms")],
                "responses": {"200": ok("a page", object(json!({
                    "items": {"type": "array", "items": verification},
                    "next_before_ms": nullable("integer")}), &["items"]))}}}),
        ),
        (
            "/api/v1/returns/verifications/{scan_id}".into(),
            json!({"get": {"tags": ["returns"],
                "summary": "a verification with every LMS exchange behind it",
                "parameters": [path_param("scan_id", "the returns scan's id")],
                "responses": {"200": ok("the investigation record", s("object"))}}}),
        ),
        (
            format!("{verify_base}/gtin/{{gtin}}/lot/{{lot}}/ser/{{serial}}"),
            json!({"get": {"tags": ["lms"],
                "summary": "GS1 Lightweight Messaging verification (trading partners' key)",
                "parameters": [
                    path_param("gtin", "GTIN-14"), path_param("lot", "lot"),
                    path_param("serial", "serial"),
                    query("exp", s("string"), "expiry YYMMDD"),
                    query("linkType", s("string"), "verificationService"),
                    query("context", s("string"), "dscsaSaleableReturn"),
                    query("reqGLN", s("string"), "the requester's GLN"),
                    query("corrUUID", s("string"), "correlation id")],
                "responses": {"200": ok("the verification response", s("object"))}}}),
        ),
        (
            format!("{verify_base}/checkConnectivity"),
            json!({"get": {"tags": ["lms"], "summary": "LMS connectivity check",
                "parameters": [query("gtin", s("string"), "a GTIN"),
                               query("reqGLN", s("string"), "the requester's GLN")],
                "responses": {"200": ok("connectivity answer", s("object"))}}}),
        ),
    ]
}

/// Operation keys of a path item.
pub const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// `(method, path)` of every operation of a document.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let item: &Map<String, Value> = match item.as_object() {
                Some(i) => i,
                None => continue,
            };
            for m in METHODS {
                if item.contains_key(m) {
                    out.push((m.to_owned(), path.clone()));
                }
            }
        }
    }
    out
}
