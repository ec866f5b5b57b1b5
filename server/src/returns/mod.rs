//! Saleable returns: verifying each returned pack's product identifier and deciding what
//! the pack becomes, from the scan to the stock. One module owns the whole workflow:
//! - [`service`]: one verification attempt, from our own manufacturer data when we hold
//!   its GTIN, else by asking the responder routed for it (LMS requester, see
//!   `crate::verification`), and the online check a scanner asks for;
//! - [`apply`]: the projection's side: a projected returns scan queues its pack, and a
//!   decision is applied to stock exactly once (an `inspecting` or `holding` event, the
//!   pack's status, an exception when it is not sellable);
//! - [`worker`]: the background loop that retries pending records and applies decisions;
//! - [`routes`] and [`store`]: the HTTP surface and the `return_verification` rows.
//!
//! Two ways in, one record per scan (`return_verification`, keyed by scan id):
//! - **online**: the scanner asks `POST /api/v1/returns/verify` right after the scan and
//!   shows the outcome in the scan's feedback;
//! - **offline**: the scan syncs later; its projection queues a pending record, and the
//!   worker verifies it, retrying while responders are unreachable.
//!
//! A verdict holds only for the scan it verified: same task, device, user and product
//! identifier ([`Binding`]). The online path refuses a scan id another binding holds (409)
//! or that lies in another scanner's id namespace (403). A record made before its scan
//! synced is applied only once the projection has seen the synced scan and found the same
//! binding; otherwise the verdict is set aside, the scan is verified afresh and held, and
//! `return_identifiers_mismatch` is opened.
//!
//! Either way the decision is applied after the scan itself is projected, and the outcome
//! is written back into the task document (by the projection worker, which the applying
//! transaction flags the document for) for the scanner to show after its next sync.

pub mod apply;
mod binding;
pub mod routes;
pub mod service;
pub(crate) mod store;
pub mod worker;

pub use crate::db::entity::return_verification::ReturnState;
pub use binding::{Binding, BindingConflict};

use swt_domain::doc::VerificationOutcome;

use crate::db::entity::return_verification;

/// What a scan's `results.verification` says for a record, as the scanner shows it:
/// `identifiers_mismatch` when the synced scan was not the one verified, whatever the
/// fresh verification says.
pub fn result_code(r: &return_verification::Model) -> VerificationOutcome {
    if r.mismatch.is_some() {
        return VerificationOutcome::IdentifiersMismatch;
    }
    match r.state {
        ReturnState::Sellable => VerificationOutcome::Verified,
        ReturnState::Review => VerificationOutcome::Review,
        ReturnState::Quarantined => VerificationOutcome::NotVerified,
        ReturnState::Pending => VerificationOutcome::Pending,
    }
}

impl From<crate::verification::lms::ReturnDecision> for ReturnState {
    fn from(d: crate::verification::lms::ReturnDecision) -> Self {
        use crate::verification::lms::ReturnDecision;
        match d {
            ReturnDecision::Sellable => ReturnState::Sellable,
            ReturnDecision::Review => ReturnState::Review,
            ReturnDecision::Quarantine => ReturnState::Quarantined,
        }
    }
}
