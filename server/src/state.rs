//! The state every handler shares. A leaf: it holds the services' handles, and no route
//! module is needed to build it.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

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
    /// Wakes the outbox worker (numbering and webhook delivery): a replay, a new outcome.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// LMS responder caches, requester and audit writer.
    pub verification: Arc<crate::verification::Verification>,
    /// Parsed task documents of this process (shared with the projector).
    pub documents: Arc<crate::tasks::documents::DocumentCache>,
    /// Console sessions this process refreshed a moment ago.
    pub console_refreshes: Arc<crate::console::session::RecentRefreshes>,
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
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            documents: Arc::new(crate::tasks::documents::DocumentCache::default()),
            console_refreshes: Arc::default(),
            verification,
        }
    }
}
