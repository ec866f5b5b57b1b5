//! Server configuration: one typed struct with defaults, read from a TOML file,
//! then the environment, then command-line flags (each later source wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The database used when nothing is configured: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://swt.db?mode=rwc";

/// Everything `swt serve` needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port the HTTP server listens on.
    pub listen: SocketAddr,
    /// `sqlite://FILE` (embedded) or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// Upper bound of pooled database connections.
    pub db_max_connections: u32,
    /// `human` (default) or `json` log lines.
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `info,swt_server=debug`.
    pub log_level: String,
    /// Seconds a request may take before it is answered 408.
    pub request_timeout_secs: u64,
    /// Seconds in-flight requests get to finish after SIGTERM / Ctrl-C.
    pub shutdown_timeout_secs: u64,
    /// Returns verification (GS1 Lightweight Messaging): responder and requester.
    pub verification: VerificationConfig,
    /// Sign-in throttling, password-hashing capacity, token revocation.
    pub auth: AuthConfig,
    /// EPCIS export: identifiers as EPC URNs.
    pub epcis: EpcisConfig,
    /// Outcomes pushed to ERPs: delivery timeouts, batching and retries.
    pub webhooks: WebhookConfig,
}

/// `[webhooks]`: how outcomes are delivered to subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Milliseconds one delivery request may take, connecting included.
    pub timeout_ms: u64,
    /// Most events in one delivery request.
    pub batch: u32,
    /// Failed attempts after which a subscription stops and waits for a replay (dead).
    pub max_attempts: u32,
    /// The first retry waits this long; each next one twice as long, up to `max_backoff_ms`.
    pub first_backoff_ms: u64,
    /// The longest wait between two attempts.
    pub max_backoff_ms: u64,
    /// Milliseconds between looks for new outcomes when nothing woke the worker.
    pub poll_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            batch: 100,
            // 1 s, 2 s, 4 s … 5 min, then every 5 min: about 1 h 45 min of trying.
            max_attempts: 30,
            first_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            poll_ms: 100,
        }
    }
}

/// `[epcis]`: what EPC URN exports need beyond GS1's tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpcisConfig {
    /// GS1 Company Prefix lengths that override GS1's GCP length table: the first digits
    /// of a key (GTIN without its indicator, SSCC without its extension digit, GLN) →
    /// length 6–12, the longest matching prefix winning (`"4098765" = 7`).
    pub gcp_lengths: std::collections::BTreeMap<String, u8>,
}

/// `[auth]`: how sign-in is throttled and bounded, and how fast revocation takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Sign-in attempts allowed per user name from one client address in a window.
    pub max_attempts_per_name_and_address: u32,
    /// Failed sign-in attempts allowed per user name from all addresses together in a
    /// window (looser: only a guesser spread over many addresses reaches it).
    pub max_attempts_per_name: u32,
    /// Failed sign-in attempts allowed per client address, for any names, in a window.
    pub max_attempts_per_address: u32,
    /// Seconds a throttling window lasts; a lock ends with its window.
    pub window_secs: u64,
    /// Password hashes computed at once on the blocking pool (0: half the CPUs, at least 1).
    pub hash_workers: usize,
    /// Sign-ins allowed to wait for a hash worker; beyond that they are answered 503 at once.
    pub hash_queue: usize,
    /// Most counter rows kept; expired rows are purged first, then the oldest.
    pub max_throttle_rows: u64,
    /// Milliseconds a per-request status check (user, device, session) is cached per
    /// process: the longest a disabled device or ended session still gets through.
    pub revocation_cache_ms: u64,
    /// Take the client address from the last `X-Forwarded-For` entry when the peer is
    /// one of these proxies (exact IP addresses). Empty: the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// File holding the key that encrypts the token signing keys at rest (64 hex digits;
    /// created, mode 0600, if missing). Default: `<database file>.kek` beside an SQLite
    /// database; none for PostgreSQL unless set (or `SWT_KEY_ENCRYPTION_KEY` is given).
    pub key_encryption_key_file: Option<std::path::PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            max_attempts_per_name_and_address: 5,
            max_attempts_per_name: 50,
            max_attempts_per_address: 100,
            window_secs: 15 * 60,
            hash_workers: 0,
            hash_queue: 32,
            max_throttle_rows: 100_000,
            revocation_cache_ms: 3_000,
            trusted_proxies: Vec::new(),
            key_encryption_key_file: None,
        }
    }
}

/// `[verification]`: the LMS responder's base path and the requester's routing, timeouts,
/// retries, circuit breaker and answer cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerificationConfig {
    /// Base path the responder answers under (`{base}/gtin/…`, `{base}/checkConnectivity`).
    pub base_path: String,
    /// Seconds a positive peer answer is reused (0: never). Negative answers are never cached.
    pub cache_ttl_secs: u64,
    /// Most cached answers kept.
    pub cache_max_entries: usize,
    /// Milliseconds one request to a peer may take.
    pub peer_timeout_ms: u64,
    /// Further attempts after a failed one (timeouts, 5xx, connection errors).
    pub peer_retries: u32,
    /// Consecutive failures that open a peer's circuit.
    pub breaker_failures: u32,
    /// Seconds an open circuit stays open before one trial request.
    pub breaker_cooldown_secs: u64,
    /// Seconds between attempts to verify a pending return whose verification failed.
    pub retry_pending_secs: u64,
    /// Where to ask about GTINs whose data we do not hold: the longest matching prefix wins.
    pub routes: Vec<VerificationRoute>,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        Self {
            base_path: "/verify".to_owned(),
            cache_ttl_secs: 300,
            cache_max_entries: 100_000,
            peer_timeout_ms: 2_000,
            peer_retries: 2,
            breaker_failures: 5,
            breaker_cooldown_secs: 30,
            retry_pending_secs: 60,
            routes: Vec::new(),
        }
    }
}

/// One entry of the requester's lookup table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationRoute {
    /// Leading digits of the GTIN-14 (e.g. the indicator digit and company prefix).
    pub gtin_prefix: String,
    /// The responder's base URL (the verify path is appended).
    pub url: String,
    /// Bearer credential to present to that responder, if it wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            db_max_connections: 8,
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            request_timeout_secs: 30,
            shutdown_timeout_secs: 30,
            verification: VerificationConfig::default(),
            auth: AuthConfig::default(),
            epcis: EpcisConfig::default(),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Values given on the command line or in the environment; `None` keeps the file's
/// value (or the default).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// See [`Config::listen`].
    pub listen: Option<SocketAddr>,
    /// See [`Config::database_url`].
    pub database_url: Option<String>,
    /// See [`Config::db_max_connections`].
    pub db_max_connections: Option<u32>,
    /// See [`Config::log_format`].
    pub log_format: Option<LogFormat>,
    /// See [`Config::log_level`].
    pub log_level: Option<String>,
    /// See [`Config::request_timeout_secs`].
    pub request_timeout_secs: Option<u64>,
    /// See [`Config::shutdown_timeout_secs`].
    pub shutdown_timeout_secs: Option<u64>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    #[error("cannot read config file {path}: {cause} (check --config / SWT_CONFIG)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, as one line.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting {setting}: {message}")]
    Invalid {
        /// The setting's name in the file.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads the file (if any), then applies the overrides, then checks the result.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply(overrides);
        config.check()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            // toml's message spans several lines with a source excerpt; keep the gist.
            message: e.message().replace('\n', " "),
        })
    }

    fn apply(&mut self, o: Overrides) {
        if let Some(v) = o.listen {
            self.listen = v;
        }
        if let Some(v) = o.database_url {
            self.database_url = v;
        }
        if let Some(v) = o.db_max_connections {
            self.db_max_connections = v;
        }
        if let Some(v) = o.log_format {
            self.log_format = v;
        }
        if let Some(v) = o.log_level {
            self.log_level = v;
        }
        if let Some(v) = o.request_timeout_secs {
            self.request_timeout_secs = v;
        }
        if let Some(v) = o.shutdown_timeout_secs {
            self.shutdown_timeout_secs = v;
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.db_max_connections == 0 {
            return Err(ConfigError::Invalid {
                setting: "db_max_connections",
                message: "must be at least 1".into(),
            });
        }
        if self.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                setting: "request_timeout_secs",
                message: "must be at least 1".into(),
            });
        }
        let a = &self.auth;
        for (setting, value) in [
            (
                "auth.max_attempts_per_name_and_address",
                a.max_attempts_per_name_and_address,
            ),
            ("auth.max_attempts_per_name", a.max_attempts_per_name),
            ("auth.max_attempts_per_address", a.max_attempts_per_address),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    message: "must be at least 1".into(),
                });
            }
        }
        if a.window_secs == 0 {
            return Err(ConfigError::Invalid {
                setting: "auth.window_secs",
                message: "must be at least 1".into(),
            });
        }
        for (prefix, len) in &self.epcis.gcp_lengths {
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::Invalid {
                    setting: "epcis.gcp_lengths",
                    message: format!("{prefix:?} is not a prefix of digits"),
                });
            }
            if !(6..=12).contains(len) {
                return Err(ConfigError::Invalid {
                    setting: "epcis.gcp_lengths",
                    message: format!("{prefix}: a company prefix has 6 to 12 digits, not {len}"),
                });
            }
        }
        self.verification.check()
    }
}

impl VerificationConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |setting, message: String| Err(ConfigError::Invalid { setting, message });
        let b = &self.base_path;
        if !b.starts_with('/') || b.len() < 2 || b.ends_with('/') || b.starts_with("/api/") {
            return invalid(
                "verification.base_path",
                format!("{b:?} must start with '/', not end with '/', and lie outside /api/"),
            );
        }
        if self.peer_timeout_ms == 0 {
            return invalid("verification.peer_timeout_ms", "must be at least 1".into());
        }
        for r in &self.routes {
            let p = &r.gtin_prefix;
            if p.is_empty() || p.len() > 14 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return invalid(
                    "verification.routes.gtin_prefix",
                    format!("{p:?} must be 1 to 14 digits"),
                );
            }
            if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
                return invalid(
                    "verification.routes.url",
                    format!("{:?} must be an http:// or https:// URL", r.url),
                );
            }
        }
        Ok(())
    }
}

impl Config {
    /// The configuration as TOML with secrets masked, for the start-up log.
    pub fn redacted(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = crate::db::redact_url(&self.database_url);
        for r in &mut shown.verification.routes {
            if r.api_key.is_some() {
                r.api_key = Some("***".into());
            }
        }
        toml::to_string(&shown)
            .unwrap_or_default()
            .replace('\n', "; ")
            .trim_end_matches("; ")
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swt.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlog_level = \"debug\"\ndb_max_connections = 3\n",
        )
        .expect("write");
        let config = Config::load(
            Some(&path),
            Overrides {
                listen: Some("127.0.0.1:9001".parse().expect("addr")),
                ..Overrides::default()
            },
        )
        .expect("load");
        assert_eq!(config.listen.port(), 9001, "override beats file");
        assert_eq!(config.log_level, "debug", "file beats default");
        assert_eq!(config.db_max_connections, 3);
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("swt.toml");
        std::fs::write(&path, "listne = \"127.0.0.1:9000\"\n").expect("write");
        let err = Config::load(Some(&path), Overrides::default()).expect_err("must fail");
        let line = err.to_string();
        assert!(line.contains("listne"), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }

    #[test]
    fn zero_connections_refused() {
        let err = Config::load(
            None,
            Overrides {
                db_max_connections: Some(0),
                ..Overrides::default()
            },
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("db_max_connections"));
    }
}
