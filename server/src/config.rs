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
        Ok(())
    }

    /// The configuration as TOML with secrets masked, for the start-up log.
    pub fn redacted(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = crate::db::redact_url(&self.database_url);
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
