//! The verdicts and the reason table: the stable code of each rule, its feedback byte in
//! the scan record, and the verdict it carries in each kind of task.

use crate::doc::TaskKind;
use crate::model::{ExpiryPolicy, Feedback};

crate::code_table! {
    /// How the scanner treats a scan.
    #[derive(PartialOrd, Ord)]
    pub enum Verdict {
        /// Taken, nothing to say.
        Accept = "accept",
        /// Taken, but the picker must look (counted toward the task).
        Warn = "warn",
        /// Not taken (recorded for the audit trail, never counted).
        Reject = "reject",
    }
    /// Stable lowercase name.
    fn as_str;
}

crate::code_table! {
    /// Why a scan got its verdict. `code()` is the stable name shown to logs and the
    /// foreign side; [`feedback()`](Reason::feedback) is the one-byte code stored in the
    /// scan record. `ALL` is in priority order of the table in `docs/task-document.md`.
    pub enum Reason {
        /// Accepted.
        Ok = "ok",
        /// The barcode could not be read as GS1 data (carries the GS1 error code).
        InvalidBarcode = "invalid_barcode",
        /// The task is closed, cancelled or continued elsewhere.
        TaskClosed = "task_closed",
        /// The kind of label does not belong in this kind of task (see
        /// [`TaskState::evaluate`](super::TaskState::evaluate)).
        WrongTaskKind = "wrong_task_kind",
        /// Same serial or container already counted in this task (and not voided).
        Duplicate = "duplicate",
        /// The serial is blocked (quarantined, suspect, destroyed…).
        BlockedSerial = "blocked_serial",
        /// The lot is recalled.
        RecalledLot = "recalled_lot",
        /// The pack is past its expiry date.
        Expired = "expired",
        /// The item is not among the task's expected lines or units.
        NotExpected = "not_expected",
        /// The GTIN is expected, but only in another lot.
        WrongLot = "wrong_lot",
        /// Every expected line for the GTIN is already complete.
        OverQuantity = "over_quantity",
        /// The GTIN is not in the site's product master.
        UnknownProduct = "unknown_product",
        /// The pack expires within the site's minimum remaining shelf life.
        ExpiresSoon = "expires_soon",
        /// A lot or serial looks like it swallowed further AIs (lost FNC1 separator).
        SeparatorSuspected = "separator_suspected",
    }
    /// The stable snake_case code.
    fn code;
}

impl Reason {
    /// The feedback code stored in the scan record.
    pub fn feedback(self) -> Feedback {
        match self {
            Reason::Ok => Feedback::Ok,
            Reason::InvalidBarcode => Feedback::ReadFailed,
            Reason::TaskClosed => Feedback::TaskClosed,
            Reason::WrongTaskKind => Feedback::WrongTaskKind,
            Reason::Duplicate => Feedback::Duplicate,
            Reason::BlockedSerial => Feedback::Blocked,
            Reason::RecalledLot => Feedback::Recalled,
            Reason::Expired => Feedback::Expired,
            Reason::NotExpected => Feedback::NotExpected,
            Reason::WrongLot => Feedback::WrongLot,
            Reason::OverQuantity => Feedback::OverQuantity,
            Reason::UnknownProduct => Feedback::UnknownProduct,
            Reason::ExpiresSoon => Feedback::ShortExpiry,
            Reason::SeparatorSuspected => Feedback::SeparatorSuspected,
        }
    }

    /// The reason a stored feedback code stands for (`None` for `warning` and unknown codes).
    pub fn from_feedback(f: Feedback) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.feedback() == f)
    }

    /// True for reasons the site's reference data decides (product master, recalls,
    /// blocked serials, expiry policy), as opposed to the task's own counting.
    pub fn depends_on_reference(self) -> bool {
        matches!(
            self,
            Reason::RecalledLot
                | Reason::BlockedSerial
                | Reason::Expired
                | Reason::ExpiresSoon
                | Reason::UnknownProduct
        )
    }

    /// The verdict this reason carries in a task of `kind` under `policy`.
    ///
    /// Discrepancies about *what* was scanned (not expected, wrong lot, over quantity) stop
    /// the picker where a wrong item would leave the site (picking, packing, shipping); in
    /// receiving, returns and stock counts the goods are physically here, so the fact is
    /// recorded and counted with a warning for the manager to resolve.
    pub fn verdict(self, kind: TaskKind, policy: &ExpiryPolicy) -> Verdict {
        use Reason::*;
        match self {
            Ok => Verdict::Accept,
            InvalidBarcode | TaskClosed | WrongTaskKind | Duplicate | BlockedSerial
            | RecalledLot => Verdict::Reject,
            Expired if policy.reject_expired => Verdict::Reject,
            Expired => Verdict::Warn,
            NotExpected | WrongLot | OverQuantity => match kind {
                TaskKind::Picking | TaskKind::Packing | TaskKind::Shipping => Verdict::Reject,
                TaskKind::Receiving | TaskKind::Returns | TaskKind::StockCount => Verdict::Warn,
            },
            UnknownProduct | ExpiresSoon | SeparatorSuspected => Verdict::Warn,
        }
    }
}

/// One rule that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The reason code.
    pub reason: Reason,
    /// Its verdict in this task.
    pub verdict: Verdict,
    /// Short message for the picker.
    pub message: String,
}
