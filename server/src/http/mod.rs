//! The HTTP surface: router, shared state, middleware, and errors as responses.

mod error;
pub mod openapi;
mod ops;
pub mod page;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use sea_orm::DatabaseConnection;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;

use crate::auth::keys::KeyRing;
use crate::config::Config;
use crate::metrics::Metrics;

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub db: DatabaseConnection,
    /// The running configuration.
    pub config: Arc<Config>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Token signing and verification keys.
    pub keys: Arc<KeyRing>,
    /// Sign-in throttle and password-hashing capacity.
    pub throttle: Arc<crate::auth::throttle::Throttle>,
    /// Per-request user, device and session status, briefly cached.
    pub status: Arc<crate::auth::revocation::StatusCache>,
    /// This process's own Automerge actor for server-side document changes. Each process
    /// has its own, since an actor's changes must form one sequential chain.
    pub server_actor: Arc<automerge::ActorId>,
    /// Wakes the projector after a merge brought scans.
    pub projector_wake: Arc<tokio::sync::Notify>,
    /// LMS responder caches, requester and audit writer.
    pub verification: Arc<crate::verification::Verification>,
    /// Parsed task documents of this process (shared with the projector).
    pub documents: Arc<crate::sync::DocumentCache>,
}

impl AppState {
    /// Fresh state for one server process: new keys ring, actor, metrics registry and
    /// verification machinery (its audit writer starts on the current runtime).
    pub fn new(db: DatabaseConnection, config: Config) -> AppState {
        let verification = Arc::new(crate::verification::Verification::start(
            db.clone(),
            &config.verification,
        ));
        let throttle = Arc::new(crate::auth::throttle::Throttle::new(&config.auth));
        let status = Arc::new(crate::auth::revocation::StatusCache::new(
            Duration::from_millis(config.auth.revocation_cache_ms),
        ));
        AppState {
            db,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            keys: Arc::new(KeyRing::new()),
            throttle,
            status,
            server_actor: Arc::new(automerge::ActorId::random()),
            projector_wake: Arc::new(tokio::sync::Notify::new()),
            documents: Arc::new(crate::sync::DocumentCache::default()),
            verification,
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the whole router with its middleware.
pub fn router(state: AppState) -> Router {
    // Routes documented in the OpenAPI document; nesting here puts the prefix in the spec.
    let (documented, generated) = utoipa_axum::router::OpenApiRouter::new()
        .nest(
            "/api/v1",
            crate::trace::routes()
                .merge(crate::serials::routes::routes())
                .merge(crate::reference::routes::routes())
                .merge(crate::auth::devices::documented_routes()),
        )
        .split_for_parts();
    // Serialized once: the document does not change while the process runs.
    let openapi = axum::body::Bytes::from(
        serde_json::to_vec(&openapi::document(
            &generated,
            &state.config.verification.base_path,
        ))
        .unwrap_or_default(),
    );
    let routes = Router::new()
        .merge(ops::routes())
        .nest(
            "/api/v1",
            crate::auth::routes::routes()
                .merge(crate::auth::devices::routes())
                .merge(crate::tasks::routes::routes())
                .merge(crate::sync::routes::routes())
                .merge(crate::verification::returns::routes()),
        )
        .merge(documented)
        .merge(crate::verification::responder::routes(
            &state.config.verification.base_path,
        ))
        .route(
            "/openapi.json",
            axum::routing::get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], openapi)
            }),
        );
    with_edges(routes, state)
}

/// What every route gets around it: the JSON 404 for unknown routes, panics answered
/// as 500, metrics, request ids and their log span, JSON for every error, the timeout.
fn with_edges(routes: Router<AppState>, state: AppState) -> Router {
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

    /// A handler that panics is answered 500 JSON with a request id (and counted),
    /// and the server goes on answering.
    #[tokio::test]
    async fn a_panicking_handler_is_a_500_not_a_dropped_connection() {
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        let state = AppState::new(db, Config::default());
        let metrics = Arc::clone(&state.metrics);
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
