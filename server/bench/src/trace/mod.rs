//! `swt-bench trace`: the trace-query benchmark of issue #5. It loads a database with a
//! synthetic warehouse of about ten million EPCIS events ([`warehouse`], [`load`]), then asks the
//! real server, over HTTP with a manager's token, for random serial histories and pallet
//! explosions and reports latency percentiles ([`run`]).

pub mod console;
pub mod load;
pub mod run;
pub mod warehouse;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The database failed or refused.
    #[error("benchmark database: {0}")]
    Db(String),
    /// The setting cannot work (named in the message).
    #[error("{0}")]
    Setup(String),
    /// A trace request failed or answered something other than the loaded data.
    #[error("trace request {path}: {why}")]
    Request {
        /// The request path.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The server could not start.
    #[error(transparent)]
    Serve(#[from] swt_server::app::ServeError),
}
