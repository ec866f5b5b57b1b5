//! The HTTP edges every route shares: middleware, errors as responses, paging and the
//! OpenAPI document. The router itself is assembled in [`crate::app`], so no module here
//! depends on a route module.

mod error;
pub mod openapi;
pub mod ops;
pub mod page;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;

use crate::state::AppState;

/// A JSON request body, refused with our own 400 `bad_request` (the message names the
/// field and why) rather than the extractor's 422. Routes that take `Bytes` use it.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("request body: {e}"),
        )
    })
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every route gets around it: the JSON 404 for unknown routes, panics answered
/// as 500, metrics, request ids and their log span, JSON for every error, the timeout.
pub fn with_edges(routes: Router<AppState>, state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    routes
        .fallback(error::unknown_route)
        // Inside the metrics layer, so a panic is counted as the 500 it is answered with.
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(
            // Outermost first: the id is set before the span that logs it is made.
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request| {
                            let id = req
                                .headers()
                                .get(&REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-");
                            tracing::info_span!(
                                "request",
                                request_id = %id,
                                method = %req.method(),
                                path = %req.uri().path(),
                            )
                        })
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                // Outside the timeout, so its 408 becomes JSON too.
                .layer(middleware::from_fn(error::json_errors))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                )),
        )
        .with_state(state)
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    // The route template, never the raw path: ids in paths would explode the label set.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.observe_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// A handler that panics is answered 500 JSON with a request id (and counted),
    /// and the server goes on answering.
    #[tokio::test]
    async fn a_panicking_handler_is_a_500_not_a_dropped_connection() {
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        let state = AppState::new(db, Config::default());
        let metrics = std::sync::Arc::clone(&state.metrics);
        let routes = Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if true {
                        panic!("boom");
                    }
                    "unreachable"
                }),
            )
            .route("/fine", axum::routing::get(|| async { "fine" }));
        let app = with_edges(routes, state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        // reqwest has TLS without a default provider (see the requester): install ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();

        let resp = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(resp.status(), 500);
        assert!(resp.headers().contains_key("x-request-id"));
        let body: serde_json::Value = resp.json().await.expect("JSON");
        assert_eq!(body["code"], "internal");
        assert!(body["message"].is_string());

        let fine = client
            .get(format!("http://{addr}/fine"))
            .send()
            .await
            .expect("still serving");
        assert_eq!(fine.status(), 200);
        let text = metrics.render(crate::db::PoolState {
            size: 0,
            idle: 0,
            max: 0,
        });
        assert!(
            text.contains(r#"swt_http_requests_total{method="GET",route="/boom",status="500"} 1"#),
            "the panic is counted: {text}"
        );
    }
}
