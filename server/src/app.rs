//! Running the server: open the database, apply migrations, bind, serve until told
//! to stop, then let in-flight requests finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::serve::ListenerExt;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::{self, DbError};
use crate::http::{self, openapi};
use crate::state::AppState;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {cause} (set --listen / SWT_LISTEN)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        cause: std::io::Error,
    },
    /// Serving failed after start-up.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The token signing keys cannot be used (wrong key-encryption key, unreadable file).
    #[error(transparent)]
    Keys(#[from] crate::auth::keys::KeyError),
}

/// Opens the configured database and brings its schema up to date.
pub async fn open_database(config: &Config) -> Result<DatabaseConnection, DbError> {
    let db = db::connect(&config.database_url, config.db_max_connections).await?;
    db::migrate(&db).await?;
    Ok(db)
}

/// A server bound to its port, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    /// See [`db::projector_connection`].
    projector_db: DatabaseConnection,
}

impl Server {
    /// Binds the listen address. Port 0 picks a free port (see [`Server::local_addr`]).
    pub async fn bind(config: Config, db: DatabaseConnection) -> Result<Self, ServeError> {
        let addr = config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|cause| ServeError::Bind { addr, cause })?;
        let projector_db = db::projector_connection(&db, &config.database_url).await?;
        let kek = crate::auth::keys::Kek::resolve(&config)?;
        let mut state = AppState::new(db, config);
        let keys = crate::auth::keys::KeyRing::with_kek(kek);
        keys.check(&state.db).await?;
        state.keys = Arc::new(keys);
        Ok(Self {
            listener,
            state,
            projector_db,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then waits for in-flight requests (at most
    /// `shutdown_timeout_secs`) and closes the database pool.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let grace = Duration::from_secs(self.state.config.shutdown_timeout_secs);
        let db = self.state.db.clone();
        let projector_stop = Arc::new(tokio::sync::Notify::new());
        let projector_db = self.projector_db;
        let projector = tokio::spawn(crate::projection::worker::run(
            projector_db.clone(),
            Arc::clone(&self.state.documents),
            Arc::clone(&self.state.server_actor),
            Arc::clone(&self.state.projector_wake),
            Arc::clone(&projector_stop),
        ));
        let returns_stop = Arc::new(tokio::sync::Notify::new());
        let returns = tokio::spawn(crate::returns::worker::run(
            db.clone(),
            Arc::clone(&self.state.verification),
            self.state.config.verification.clone(),
            Arc::clone(&self.state.projector_wake),
            Arc::clone(&returns_stop),
        ));
        let outbox_stop = Arc::new(tokio::sync::Notify::new());
        let outbox = tokio::spawn(crate::outbox::webhooks::run(
            db.clone(),
            Arc::clone(&self.state.server_actor),
            self.state.config.webhooks.clone(),
            Arc::clone(&self.state.outbox_wake),
            Arc::clone(&outbox_stop),
        ));
        let checkpoint_stop = Arc::new(tokio::sync::Notify::new());
        let checkpointer = tokio::spawn(crate::db::checkpointer(
            db.clone(),
            Arc::clone(&checkpoint_stop),
        ));
        let app = router(self.state);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            let _ = stopping_tx.send(());
        };
        // Without TCP_NODELAY a response written in two segments waits for the client's
        // delayed ACK (~40 ms per request), which dominated sync round trips.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        // The peer address feeds the per-address sign-in throttle.
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        let serve = std::pin::pin!(serve.into_future());
        let result = tokio::select! {
            r = serve => r.map_err(ServeError::from),
            () = async {
                // Only once shutdown has begun does the grace period start.
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(seconds = grace.as_secs(), "requests still running after the grace period; stopping anyway");
                Ok(())
            }
        };
        // notify_one stores a permit, so the projector stops even if it is busy now.
        projector_stop.notify_one();
        returns_stop.notify_one();
        outbox_stop.notify_one();
        let _ = projector.await;
        let _ = returns.await;
        let _ = outbox.await;
        checkpoint_stop.notify_one();
        let _ = checkpointer.await;
        if let Err(e) = projector_db.close().await {
            tracing::warn!(error = %e, "closing the projector's connection");
        }
        if let Err(e) = db.close().await {
            tracing::warn!(error = %e, "closing the database pool");
        }
        result
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Builds the whole router with its middleware.
pub fn router(state: AppState) -> Router {
    // Routes documented in the OpenAPI document; nesting here puts the prefix in the spec.
    let (documented, generated) = utoipa_axum::router::OpenApiRouter::new()
        .nest(
            "/api/v1",
            crate::trace::routes()
                .merge(crate::serials::routes::routes())
                .merge(crate::verification::routes::routes())
                .merge(crate::reference::routes::routes())
                .merge(crate::auth::devices::documented_routes())
                .merge(crate::auth::integration::documented_routes())
                .merge(crate::orders::routes::routes())
                .merge(crate::outbox::routes::routes())
                .merge(crate::stock::routes::routes()),
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
    let console = crate::console::routes(&state);
    let routes = Router::new()
        .merge(http::ops::routes())
        .merge(console)
        .nest(
            "/api/v1",
            crate::auth::routes::routes()
                .merge(crate::auth::devices::routes())
                .merge(crate::tasks::routes::routes())
                .merge(crate::sync::routes::routes())
                .merge(crate::returns::routes::routes()),
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
    http::with_edges(routes, state)
}
