//! Returns verification under DSCSA with the GS1 Lightweight Messaging Standard (LMS):
//! the protocol ([`lms`]), the responder's decision from held manufacturer data
//! ([`decide`]), the HTTP responder ([`responder`]), the requester that asks other
//! responders ([`requester`]), the audit log of every exchange ([`audit`]), and the
//! saleable-returns workflow that uses them ([`returns`]).

pub mod audit;
pub mod decide;
pub mod lms;
pub mod partners;
pub mod requester;
pub mod responder;
pub mod routes;

use sea_orm::DatabaseConnection;

use crate::config::VerificationConfig;

/// The verification machinery one server process shares between requests.
pub struct Verification {
    /// Group-commit writer of the audit log.
    pub audit: audit::AuditLog,
    /// Partner and policy caches of the responder.
    pub responder: responder::ResponderCache,
    /// Client for other responders.
    pub requester: requester::Requester,
}

impl Verification {
    /// Starts the audit writer on the current runtime.
    pub fn start(db: DatabaseConnection, cfg: &VerificationConfig) -> Verification {
        Verification {
            audit: audit::AuditLog::start(db),
            responder: responder::ResponderCache::default(),
            requester: requester::Requester::new(cfg),
        }
    }
}
