//! Support for swt's whole-flow tests (the tests themselves are in `tests/`).
//!
//! Every test gets a database of its own: a fresh SQLite file by default, or, when
//! `SWT_TEST_DATABASE_URL` names a PostgreSQL database, a new database created next to
//! it (named after it plus a random suffix) and dropped when the test ends. `.ci/run` runs
//! the suite once each way. Nothing is mocked: the real server, router and database.

// Test support: a fixture that fails is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::str::FromStr;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Executor as _, raw_sql};
use swt_server::app::{self, Server};
use swt_server::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The environment variable that selects PostgreSQL for the test run.
pub const DATABASE_ENV: &str = "SWT_TEST_DATABASE_URL";

/// A database for one test.
pub struct TestDb {
    url: String,
    kind: Kind,
}

enum Kind {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// Creates an empty database of the kind this run tests.
    pub async fn new() -> anyhow::Result<Self> {
        match std::env::var(DATABASE_ENV) {
            Ok(base) if base.starts_with("postgres") => Self::postgres(&base).await,
            Ok(other) if !other.is_empty() => {
                anyhow::bail!("{DATABASE_ENV}={other}: only postgres:// URLs are supported")
            }
            _ => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}/swt.db?mode=rwc", dir.path().display());
                Ok(Self {
                    url,
                    kind: Kind::Sqlite { _dir: dir },
                })
            }
        }
    }

    async fn postgres(base: &str) -> anyhow::Result<Self> {
        let opts = PgConnectOptions::from_str(base)?;
        let base_name = opts.get_database().unwrap_or("postgres").to_owned();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{base_name}_{}", &suffix[..12]);
        // An unreachable server fails the test: under CI that must never be a silent skip.
        let mut conn = opts.connect().await.map_err(|e| {
            anyhow::anyhow!("{DATABASE_ENV} is set but PostgreSQL is unreachable: {e}")
        })?;
        // Names are made here (base name + hex), never from outside input.
        conn.execute(raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\""
        ))))
        .await?;
        conn.close().await?;
        let url = replace_database(base, &base_name, &name);
        Ok(Self {
            url,
            kind: Kind::Postgres {
                admin_url: base.to_owned(),
                name,
            },
        })
    }

    /// The database URL to hand to swt.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres { .. })
    }

    /// Drops the database (PostgreSQL); SQLite files go with their temporary directory.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let mut conn = PgConnectOptions::from_str(admin_url)?.connect().await?;
            conn.execute(raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            ))))
            .await?;
            conn.close().await?;
        }
        Ok(())
    }
}

fn replace_database(url: &str, old: &str, new: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let head = match head.rsplit_once('/') {
        Some((prefix, db)) if db == old => format!("{prefix}/{new}"),
        _ => format!("{}/{new}", head.trim_end_matches('/')),
    };
    match query {
        Some(q) => format!("{head}?{q}"),
        None => head,
    }
}

/// A real swt server on an ephemeral loopback port, in this process.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The server's database pool, for looking behind the API.
    pub db: DatabaseConnection,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), app::ServeError>>>,
}

/// A configuration for tests: the given database, an ephemeral port.
pub fn test_config(db_url: &str) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: db_url.to_owned(),
        ..Config::default()
    }
}

impl TestServer {
    /// Opens (and migrates) the database, binds, and serves in the background.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let db = app::open_database(&config).await?;
        Self::start_with(config, db).await
    }

    /// Serves with an already opened database (which may be left unmigrated on purpose).
    pub async fn start_with(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        let server = Server::bind(config, db.clone()).await?;
        let addr = server.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            base_url: format!("http://{addr}"),
            addr,
            db,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database(
                "postgres://postgres@127.0.0.1:5432/swt_ci",
                "swt_ci",
                "swt_ci_x"
            ),
            "postgres://postgres@127.0.0.1:5432/swt_ci_x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "db", "db_1"),
            "postgres://u@h/db_1?sslmode=disable"
        );
    }
}

/// HTTP clients for tests. The workspace's reqwest has TLS (the server's LMS requester
/// talks to https peers) but no default crypto provider, so a client built before one is
/// installed panics: build test clients here, which install ring (the server's provider)
/// for the process first.
pub mod http {
    /// A client builder, with a crypto provider installed.
    pub fn builder() -> reqwest::ClientBuilder {
        // An error means a provider is already installed, which is all that is needed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
    }

    /// A client with reqwest's defaults.
    pub fn client() -> reqwest::Client {
        builder().build().expect("an HTTP client")
    }

    /// `GET url` with a client of its own.
    pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
        client().get(url).send().await
    }
}

/// Helpers for flows that use the HTTP API as a manager or a scanner would.
pub mod api {
    use std::time::Duration;

    use reqwest::{Method, StatusCode};
    use sea_orm::DatabaseConnection;
    use serde_json::{Value, json};
    use swt_core::api::SignedIn;
    use swt_core::model::{Action, Feedback, Identifiers, Scan, ScanId};
    use swt_core::store::{Store, StoreOptions};
    use swt_core::sync::Client;
    use swt_server::auth::Role;
    use swt_server::auth::keys::KeyRing;
    use swt_server::auth::token::{self, Subject};

    /// The REST API under `<base_url>/api/v1`, called with a bearer token. Each call
    /// answers the status and the JSON body (`null` when the body is not JSON); a request
    /// that gets no answer at all fails the test.
    #[derive(Clone)]
    pub struct Api {
        base_url: String,
        client: reqwest::Client,
    }

    impl Api {
        /// The API of the server at `base_url` (`http://127.0.0.1:PORT`).
        pub fn new(base_url: &str) -> Self {
            Self {
                base_url: base_url.trim_end_matches('/').to_owned(),
                client: crate::http::client(),
            }
        }

        /// One request; `path` starts after `/api/v1`.
        pub async fn call(
            &self,
            method: Method,
            token: &str,
            path: &str,
            body: Option<Value>,
        ) -> (StatusCode, Value) {
            self.call_with(method, token, path, body, &[]).await
        }

        /// One request with extra headers.
        pub async fn call_with(
            &self,
            method: Method,
            token: &str,
            path: &str,
            body: Option<Value>,
            headers: &[(&str, &str)],
        ) -> (StatusCode, Value) {
            let mut req = self
                .client
                .request(method, format!("{}/api/v1{path}", self.base_url))
                .bearer_auth(token);
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("the server answers");
            let status = resp.status();
            (status, resp.json().await.unwrap_or(Value::Null))
        }

        /// `GET path`.
        pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
            self.call(Method::GET, token, path, None).await
        }

        /// `GET path` with extra headers.
        pub async fn get_with(
            &self,
            token: &str,
            path: &str,
            headers: &[(&str, &str)],
        ) -> (StatusCode, Value) {
            self.call_with(Method::GET, token, path, None, headers)
                .await
        }

        /// `POST path` with a JSON body.
        pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
            self.call(Method::POST, token, path, Some(body)).await
        }
    }

    /// An access token for `user` of `org` with `role`, signed with the server's keys as
    /// a second server process would sign it (the key is found through `db`): for tests
    /// and tools that need a manager's token without a user in the database.
    pub async fn mint_token(
        keys: &KeyRing,
        db: &DatabaseConnection,
        user: &str,
        org: &str,
        role: Role,
    ) -> anyhow::Result<String> {
        Ok(token::issue(
            keys,
            db,
            &Subject {
                user_id: user,
                org_id: org,
                site_id: None,
                role,
                device: None,
                session: None,
            },
        )
        .await?)
    }

    /// Signs in through the API and returns the access token.
    pub async fn login(base_url: &str, username: &str, password: &str) -> anyhow::Result<String> {
        let resp: Value = crate::http::client()
            .post(format!("{base_url}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        resp["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no access token in {resp}"))
    }

    /// Creates a task as a manager; returns its id.
    pub async fn create_task(base_url: &str, token: &str, body: &Value) -> anyhow::Result<String> {
        let resp = crate::http::client()
            .post(format!("{base_url}/api/v1/tasks"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = resp.status();
        let value: Value = resp.json().await?;
        anyhow::ensure!(status == 201, "create task: {status} {value}");
        value["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no id in {value}"))
    }

    /// Registers a scanner at a site as an admin; returns its device id.
    pub async fn register_device(
        base_url: &str,
        admin_token: &str,
        site: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let resp = crate::http::client()
            .post(format!("{base_url}/api/v1/devices"))
            .bearer_auth(admin_token)
            .json(&json!({"site": site, "name": name}))
            .send()
            .await?;
        let status = resp.status();
        let value: Value = resp.json().await?;
        anyhow::ensure!(status == 201, "register device: {status} {value}");
        value["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no id in {value}"))
    }

    /// GET a JSON resource with a token; returns status and body.
    pub async fn get_json(base_url: &str, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let resp = crate::http::client()
            .get(format!("{base_url}{path}"))
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// POST a JSON body (with a bearer token and extra headers, if given); returns
    /// status, body (`null` when not JSON) and headers.
    pub async fn post_json(
        base_url: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> anyhow::Result<(u16, Value, reqwest::header::HeaderMap)> {
        let mut req = crate::http::client()
            .post(format!("{base_url}{path}"))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, body, headers))
    }

    /// A scanner: its sync client, tokens and local store (blocking APIs; call from
    /// `spawn_blocking`).
    pub struct Scanner {
        /// The HTTP client.
        pub client: Client,
        /// Current tokens.
        pub tokens: SignedIn,
        /// The device's store.
        pub store: Store,
        /// The actor the store writes with.
        pub actor: automerge::ActorId,
        counter: u64,
        _dir: Option<tempfile::TempDir>,
    }

    impl Scanner {
        /// Signs in on a device and opens a fresh store. With `actor_override`, the store
        /// writes with another actor than the registered one (a forged client).
        pub fn sign_in(
            base_url: &str,
            username: &str,
            password: &str,
            device_id: &str,
            actor_override: Option<automerge::ActorId>,
        ) -> anyhow::Result<Self> {
            let client = Client::new(base_url, Duration::from_secs(30));
            let tokens = client.login(username, password, device_id)?;
            let device = tokens
                .device
                .clone()
                .ok_or_else(|| anyhow::anyhow!("no device in session"))?;
            let actor = match actor_override {
                Some(a) => a,
                None => automerge::ActorId::from(hex::decode(&device.actor_id)?.as_slice()),
            };
            let dir = tempfile::tempdir()?;
            let store = Store::open(dir.path(), actor.clone(), StoreOptions::default())?;
            Ok(Self {
                client,
                tokens,
                store,
                actor,
                counter: 0,
                _dir: Some(dir),
            })
        }

        /// Syncs every document.
        pub fn sync(&mut self) -> Result<swt_core::sync::SyncReport, swt_core::sync::SyncError> {
            swt_core::sync::sync_store(
                &mut self.store,
                &self.client,
                &self.tokens.access_token,
                &self.actor,
            )
        }

        /// Syncs as planned (which documents, whether to fetch the task list).
        pub fn sync_with(
            &mut self,
            plan: &swt_core::sync::SyncPlan,
        ) -> Result<swt_core::sync::SyncReport, swt_core::sync::SyncError> {
            swt_core::sync::sync_store_with(
                &mut self.store,
                &self.client,
                &self.tokens.access_token,
                &self.actor,
                plan,
            )
        }

        /// A fresh scan id in this scanner's id space (`<actor hex>.`, as the server
        /// requires) with the random part of a UUIDv7 after it.
        pub fn scan_id(&self) -> ScanId {
            let v7 = ScanId::new_v7();
            ScanId::parse(&format!("{}.{}", self.actor, &v7.as_str()[12..])).unwrap_or(v7)
        }

        /// A scan of a pack by this scanner's user.
        pub fn pack_scan(&mut self, gtin: &str, serial: &str, lot: &str, expiry: &str) -> Scan {
            self.counter += 1;
            let device = self
                .tokens
                .device
                .as_ref()
                .map(|d| d.id.clone())
                .unwrap_or_default();
            Scan {
                id: self.scan_id(),
                raw: format!("01{gtin}17{expiry}10{lot}\u{1d}21{serial}").into_bytes(),
                ids: Identifiers {
                    gtin: Some(gtin.parse().expect("a valid GTIN")),
                    serial: Some(serial.to_owned()),
                    lot: Some(lot.to_owned()),
                    expiry: Some(expiry.to_owned()),
                    sscc: None,
                },
                action: Action::Pick,
                user: self.tokens.user.id.clone(),
                device,
                location: None,
                device_time_ms: 1_764_000_000_000 + self.counter,
                feedback: Feedback::Ok,
                parent: None,
            }
        }
    }
}

/// Counting what the projection wrote, for exactly-once checks.
pub mod projected {
    use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
    use swt_server::db::entity::{epcis_event, projected_scan};

    /// Events of a scan's own operation: not the commissioning that records lot and
    /// expiry the first time the projection learns them (at most one per pack).
    pub fn own_operation() -> sea_orm::Condition {
        sea_orm::Condition::any()
            .add(epcis_event::Column::BizStep.ne("commissioning"))
            .add(epcis_event::Column::BizStep.is_null())
    }

    /// (scans marked projected, events of their own operations written) for one
    /// document.
    pub async fn counts(db: &DatabaseConnection, doc_id: &str) -> anyhow::Result<(u64, u64)> {
        let scans = projected_scan::Entity::find()
            .filter(projected_scan::Column::DocumentId.eq(doc_id))
            .count(db)
            .await?;
        let events = epcis_event::Entity::find()
            .filter(epcis_event::Column::DocumentId.eq(doc_id))
            .filter(own_operation())
            .count(db)
            .await?;
        Ok((scans, events))
    }

    /// Waits (up to ~30 s) until `expected` scans of the document are projected.
    pub async fn wait_for(
        db: &DatabaseConnection,
        doc_id: &str,
        expected: u64,
    ) -> anyhow::Result<(u64, u64)> {
        let mut last = (0, 0);
        for _ in 0..600 {
            last = counts(db, doc_id).await?;
            if last.0 >= expected {
                return Ok(last);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        anyhow::bail!("only {} of {expected} scans projected", last.0)
    }
}

/// The stock counts the database keeps (`stock_level`, by triggers) against a recount of
/// every pack, for checks after flows that move stock.
pub mod stock {
    use std::collections::BTreeMap;

    use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
    use swt_server::db::entity::{stock_level, trace_object};

    /// (organisation, GTIN, lot, expiry, status, site, location), absent values as `''`.
    type Key = (String, String, String, String, String, String, String);

    /// Fails unless every non-zero `stock_level` count equals the number of packs in that
    /// state, and no count is negative. Returns the number of packs counted.
    pub async fn assert_consistent(db: &DatabaseConnection) -> anyhow::Result<i64> {
        let mut recount: BTreeMap<Key, i64> = BTreeMap::new();
        let packs = trace_object::Entity::find()
            .filter(trace_object::Column::Kind.eq("sgtin"))
            .all(db)
            .await?;
        for o in &packs {
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            *recount
                .entry((
                    o.organisation_id.clone(),
                    text(&o.gtin),
                    text(&o.lot),
                    text(&o.expiry),
                    o.status.as_str().to_owned(),
                    text(&o.site_id),
                    text(&o.location),
                ))
                .or_default() += 1;
        }
        let mut kept: BTreeMap<Key, i64> = BTreeMap::new();
        for l in stock_level::Entity::find().all(db).await? {
            anyhow::ensure!(l.units >= 0, "negative stock count: {l:?}");
            if l.units > 0 {
                kept.insert(
                    (
                        l.organisation_id,
                        l.gtin,
                        l.lot,
                        l.expiry,
                        l.status,
                        l.site_id,
                        l.location,
                    ),
                    l.units,
                );
            }
        }
        for (k, n) in &recount {
            anyhow::ensure!(
                kept.get(k) == Some(n),
                "{k:?}: {n} packs, kept {:?}",
                kept.get(k)
            );
        }
        anyhow::ensure!(
            kept.len() == recount.len(),
            "kept counts for states no pack is in: {:?}",
            kept.keys()
                .filter(|k| !recount.contains_key(*k))
                .collect::<Vec<_>>()
        );
        Ok(i64::try_from(packs.len())?)
    }
}

/// Running the real `swt` binary as a child process.
pub mod process {
    use std::io::{BufRead, BufReader, Read};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A running `swt` process and the address it announced.
    pub struct Running {
        /// The child.
        pub child: Child,
        /// `127.0.0.1:PORT` from its "listening on" log line.
        pub addr: String,
        /// Its remaining stderr lines.
        pub stderr: mpsc::Receiver<String>,
    }

    /// A command for the binary with no `SWT_*`/`RUST_*` settings leaking in.
    pub fn command(bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        for var in [
            "SWT_CONFIG",
            "SWT_DATABASE_URL",
            "SWT_LISTEN",
            "SWT_LOG",
            "SWT_LOG_FORMAT",
            "RUST_LOG",
            "RUST_BACKTRACE",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Starts `bin args…` in `dir` and waits (up to a minute) for it to listen.
    pub fn start(bin: &Path, args: &[&str], dir: &Path) -> anyhow::Result<Running> {
        let mut child = command(bin)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, rx) = mpsc::channel();
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| anyhow::anyhow!("swt did not announce its address"))?;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect::<String>();
            }
        };
        Ok(Running {
            child,
            addr,
            stderr: rx,
        })
    }

    /// Sends `signal` (e.g. `-TERM`, `-KILL`) and waits for the process to end.
    pub fn signal_and_wait(
        mut running: Running,
        signal: &str,
    ) -> anyhow::Result<(std::process::ExitStatus, String, Vec<String>)> {
        let status = Command::new("kill")
            .args([signal, &running.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {signal} failed");
        let exit = running.child.wait()?;
        let mut stdout = String::new();
        if let Some(mut s) = running.child.stdout.take() {
            s.read_to_string(&mut stdout)?;
        }
        let mut logs = Vec::new();
        while let Ok(line) = running.stderr.recv_timeout(Duration::from_secs(5)) {
            logs.push(line);
        }
        Ok((exit, stdout, logs))
    }
}

/// A manufacturer's LMS responder data for verification tests: serials in every status,
/// a recalled lot, an expired lot with and without an FDA extension, a strict
/// manufacturer's policy, and two trading partners (one suspended).
pub mod lms {
    use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
    use swt_server::db::entity::{
        organisation, verification_lot, verification_partner, verification_policy,
        verification_serial,
    };
    use swt_server::verification::partners::key_hash;

    pub const ORG: &str = "org-mfr";
    pub const MFR_GLN: &str = "0312345000004";
    /// The wholesaler asking (its partner key below): the demo organisation's GLN.
    pub const REQ_GLN: &str = "0614141000005";
    /// The suspended partner's GLN.
    pub const OTHER_GLN: &str = "0614141000029";
    pub const KEY: &str = "swtp_test-wholesaler-key";
    pub const SUSPENDED_KEY: &str = "swtp_suspended-partner-key";
    pub const GTIN: &str = "00312345678906";
    /// A GTIN under the strict manufacturer's prefix.
    pub const STRICT_GTIN: &str = "00398765432106";
    pub const CORR: &str = "3f9d2c1e-6a1b-4c44-9c2e-0a7b1d9e5f11";

    /// Seeds the manufacturer organisation `ORG` and its data.
    pub async fn seed(db: &DatabaseConnection) -> anyhow::Result<()> {
        organisation::Entity::insert(organisation::ActiveModel {
            id: Set(ORG.into()),
            name: Set("Manufacturer".into()),
            gln: Set(Some(MFR_GLN.into())),
            created_at: Set(chrono::Utc::now()),
        })
        .exec(db)
        .await?;
        let serial = |gtin: &str, s: &str, lot: &str, exp: &str, status: &str| {
            verification_serial::ActiveModel {
                organisation_id: Set(ORG.into()),
                gtin: Set(gtin.into()),
                serial: Set(s.into()),
                lot: Set(lot.into()),
                expiry: Set(exp.into()),
                status: Set(status.into()),
                source: Set("test".into()),
                updated_at_ms: Set(0),
            }
        };
        verification_serial::Entity::insert_many([
            serial(GTIN, "OK1", "LOT42", "300131", "active"),
            serial(GTIN, "OK2", "LOT42", "300131", "active"),
            serial(GTIN, "SUS1", "LOT42", "300131", "suspect"),
            serial(GTIN, "ILL1", "LOT42", "300131", "illegitimate"),
            serial(GTIN, "DEC1", "LOT42", "300131", "decommissioned"),
            serial(GTIN, "REC1", "LOTR", "300131", "active"),
            serial(GTIN, "EXP1", "LOTE", "250100", "active"),
            serial(GTIN, "EXT1", "LOTX", "250100", "active"),
            serial(STRICT_GTIN, "REC2", "LOTR2", "300131", "active"),
            serial(STRICT_GTIN, "EXP2", "LOTE2", "250100", "active"),
            serial(STRICT_GTIN, "SUS2", "LOTS2", "300131", "suspect"),
        ])
        .exec(db)
        .await?;
        let lot = |gtin: &str, lot: &str, recalled: bool, ext: Option<&str>| {
            verification_lot::ActiveModel {
                organisation_id: Set(ORG.into()),
                gtin: Set(gtin.into()),
                lot: Set(lot.into()),
                recalled: Set(recalled),
                expiry_extended_to: Set(ext.map(str::to_owned)),
                updated_at_ms: Set(0),
            }
        };
        verification_lot::Entity::insert_many([
            lot(GTIN, "LOTR", true, None),
            lot(GTIN, "LOTX", false, Some("321231")),
            lot(STRICT_GTIN, "LOTR2", true, None),
        ])
        .exec(db)
        .await?;
        verification_policy::Entity::insert(verification_policy::ActiveModel {
            organisation_id: Set(ORG.into()),
            gtin_prefix: Set("00398765".into()),
            manufacturer: Set("Strict Pharma".into()),
            on_recalled: Set("manufacturer_policy".into()),
            on_expired: Set("manufacturer_policy".into()),
            on_suspect: Set("not_for_redistribution".into()),
            disclose_mismatch: Set(false),
            updated_at_ms: Set(0),
        })
        .exec(db)
        .await?;
        let partner =
            |id: &str, key: &str, gln: &str, status: &str| verification_partner::ActiveModel {
                id: Set(id.into()),
                organisation_id: Set(ORG.into()),
                gln: Set(gln.into()),
                name: Set(format!("partner {id}")),
                key_hash: Set(key_hash(key)),
                status: Set(status.into()),
                created_at_ms: Set(0),
            };
        verification_partner::Entity::insert_many([
            partner("p1", KEY, REQ_GLN, "active"),
            partner("p2", SUSPENDED_KEY, OTHER_GLN, "suspended"),
        ])
        .exec(db)
        .await?;
        Ok(())
    }
}
