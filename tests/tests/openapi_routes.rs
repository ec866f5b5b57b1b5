//! The OpenAPI document describes every route of the real router: the router's paths
//! are read from it, each method it answers is found by asking it (anything but 405),
//! and each must be an operation of `GET /openapi.json`, with its path parameters
//! typed and swt's own `info` and security scheme.

use serde_json::Value;
use swt_server::http::openapi;
use swt_server::state::AppState;
use swt_tests::{TestDb, test_config};

/// The route templates of a router. axum does not list them; its `Debug` output does
/// (`paths: {RouteId(n): "/template", …}`), which is enough for a test. The fallback
/// router's own paths (after `fallback_router:`) are not routes.
fn route_templates(router: &axum::Router) -> Vec<String> {
    let debug = format!("{router:?}");
    let routes = debug.split("fallback_router:").next().unwrap_or("");
    let mut out: Vec<String> = routes
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A concrete path for a template: every parameter becomes `x`.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_in_the_openapi_document() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let config = test_config(tdb.url());
    let db = swt_server::app::open_database(&config).await?;
    let router = swt_server::app::router(AppState::new(db.clone(), config));
    let templates = route_templates(&router);
    assert!(
        templates.len() > 30 && templates.iter().any(|t| t == "/api/v1/tasks"),
        "routes read from the router: {templates:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let serving = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = swt_tests::http::client();
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let documented = openapi::operations(&doc);

    let mut missing = Vec::new();
    for template in &templates {
        let mut answered = 0;
        for method in openapi::METHODS {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())?;
            let resp = client
                .request(m, format!("{base}{}", concrete(template)))
                .send()
                .await?;
            if resp.status() == 405 {
                continue;
            }
            answered += 1;
            // A catch-all route is documented by the paths it serves under its prefix.
            let found = match template.split_once("/{*") {
                Some((prefix, _)) => documented
                    .iter()
                    .any(|(dm, dp)| dm == method && dp.starts_with(&format!("{prefix}/"))),
                None => documented
                    .iter()
                    .any(|(dm, dp)| dm == method && dp == template),
            };
            if !found {
                missing.push(format!("{} {template}", method.to_uppercase()));
            }
        }
        assert!(
            answered > 0,
            "{template}: no method answered (unreachable?)"
        );
    }
    assert!(missing.is_empty(), "not in /openapi.json: {missing:?}");

    // Path parameters are declared, typed.
    for (method, path) in &documented {
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let params = doc["paths"][path][method]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                params.iter().any(|p| p["name"] == name
                    && p["in"] == "path"
                    && p["schema"]["type"].is_string()),
                "{method} {path}: path parameter {name} undeclared"
            );
        }
    }
    assert_eq!(doc["info"]["title"], "swt");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["info"]["license"]["name"], "Apache-2.0");
    assert!(doc["info"]["description"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every route that uses the database documents the outage answer.
    let tasks = &doc["paths"]["/api/v1/tasks"]["get"]["responses"];
    assert!(
        tasks["503"]["headers"]["Retry-After"].is_object(),
        "{tasks}"
    );

    serving.abort();
    db.close().await?;
    tdb.close().await
}
