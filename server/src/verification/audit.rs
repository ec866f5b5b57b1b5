//! The audit log of LMS exchanges. Inbound answers are written by group commit: each
//! handler hands its record to one writer task and waits until the batch holding it is
//! committed, so an answer is never sent without its record, yet thousands of answers a
//! second cost a few transactions, not thousands.

use std::sync::Arc;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::db::entity::verification_exchange;

/// One exchange, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Organisation concerned (unknown for an unauthenticated request).
    pub organisation_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// Correlation UUID.
    pub corr_uuid: Option<String>,
    /// Requestor GLN.
    pub requestor_gln: Option<String>,
    /// Responder GLN.
    pub responder_gln: Option<String>,
    /// The peer's base URL (outbound).
    pub peer_url: Option<String>,
    /// `context`.
    pub context: Option<String>,
    /// GTIN.
    pub gtin: Option<String>,
    /// Lot.
    pub lot: Option<String>,
    /// Serial.
    pub serial: Option<String>,
    /// Expiry (YYMMDD).
    pub expiry: Option<String>,
    /// Request line: path and query.
    pub request: String,
    /// HTTP status answered or received.
    pub http_status: Option<u16>,
    /// Body answered or received.
    pub response_body: Option<String>,
    /// `data.verified`.
    pub verified: Option<bool>,
    /// `data.verificationFailureReason`.
    pub failure_reason: Option<String>,
    /// `data.additionalInfo`.
    pub additional_info: Option<String>,
    /// Transport failure, in words.
    pub error: Option<String>,
    /// The returns scan that caused an outbound request.
    pub scan_id: Option<String>,
    /// Start, UTC milliseconds.
    pub started_at_ms: i64,
    /// Duration in microseconds.
    pub duration_us: i64,
}

impl Exchange {
    fn into_active(self) -> verification_exchange::ActiveModel {
        verification_exchange::ActiveModel {
            pk: sea_orm::ActiveValue::NotSet,
            organisation_id: Set(self.organisation_id),
            direction: Set(self.direction.to_owned()),
            corr_uuid: Set(self.corr_uuid),
            requestor_gln: Set(self.requestor_gln),
            responder_gln: Set(self.responder_gln),
            peer_url: Set(self.peer_url),
            context: Set(self.context),
            gtin: Set(self.gtin),
            lot: Set(self.lot),
            serial: Set(self.serial),
            expiry: Set(self.expiry),
            request: Set(self.request),
            http_status: Set(self.http_status.map(i32::from)),
            response_body: Set(self.response_body),
            verified: Set(self.verified),
            failure_reason: Set(self.failure_reason),
            additional_info: Set(self.additional_info),
            error: Set(self.error),
            scan_id: Set(self.scan_id),
            started_at_ms: Set(self.started_at_ms),
            duration_us: Set(self.duration_us),
        }
    }
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database refused the batch.
    #[error("audit log: {0}")]
    Db(String),
    /// The writer task is gone (shutting down).
    #[error("audit log writer stopped")]
    Stopped,
}

type Job = (Exchange, oneshot::Sender<Result<(), String>>);

/// Handle to the group-commit writer; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
}

/// The most records one transaction takes (bounded so a statement stays reasonable on
/// both back-ends: 23 columns × 500 rows is well under PostgreSQL's bind limit).
const MAX_BATCH: usize = 500;

/// Batches committed at once on PostgreSQL. Each commit waits for its WAL flush; with one
/// batch at a time every answer waited for a whole flush plus the one before it, which
/// capped the responder at a few hundred answers a second. Several in flight let the
/// server flush them together. SQLite has one writer, so there it stays 1.
const PG_IN_FLIGHT: usize = 4;

impl AuditLog {
    /// Starts the writer on the current runtime.
    pub fn start(db: DatabaseConnection) -> AuditLog {
        let (tx, rx) = mpsc::channel::<Job>(8 * MAX_BATCH);
        let in_flight = crate::db::Policy::of(&db).audit_writers(PG_IN_FLIGHT);
        tokio::spawn(writer(db, rx, in_flight));
        AuditLog { tx }
    }

    /// Stores one record and returns once it is committed.
    pub async fn record(&self, e: Exchange) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((e, done))
            .await
            .map_err(|_| AuditError::Stopped)?;
        wait.await
            .map_err(|_| AuditError::Stopped)?
            .map_err(AuditError::Db)
    }
}

async fn writer(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>, in_flight: usize) {
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        // A slot first: while every slot is committing, records gather into the next batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let db = db.clone();
        tokio::spawn(async move {
            commit(&db, batch).await;
            drop(slot);
        });
    }
}

/// Writes one batch in one statement and tells each waiting handler how it went.
async fn commit(db: &DatabaseConnection, batch: Vec<Job>) {
    let (rows, acks): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|(e, a)| (e.into_active(), a)).unzip();
    let result = verification_exchange::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    if let Err(e) = &result {
        tracing::error!(error = %e, "audit log batch failed");
    }
    for a in acks {
        let _ = a.send(result.clone());
    }
}

/// Stores one record now and returns its key (outbound exchanges, which a returns
/// verification record points to).
pub async fn insert_returning_pk<C: ConnectionTrait>(db: &C, e: Exchange) -> Result<i64, DbErr> {
    let r = verification_exchange::Entity::insert(e.into_active())
        .exec(db)
        .await?;
    Ok(r.last_insert_id)
}
