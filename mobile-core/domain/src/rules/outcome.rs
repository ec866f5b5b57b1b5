//! What the rules say about one scan ([`Outcome`], with the [`Effect`] counting it has)
//! and the server's [`Judgement`] of a stored scan beside the scanner's.

use super::{Finding, Reason, Verdict};
use crate::gs1::Gs1Data;
use crate::model::{Identifiers, ScanId};

/// What counting a scan adds to the task (empty for rejected scans).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// Unit ids newly counted (`sgtin:…` packs, `sscc:…` containers and their contents).
    pub(super) keys: Vec<String>,
    /// Expected line indexes incremented, once per pack.
    pub(super) lines: Vec<usize>,
    /// Packs counted (serialized or not, allocated to a line or not).
    pub(super) packs: u64,
    /// Containers counted (scanned or inside a scanned container).
    pub(super) containers: u64,
}

impl Effect {
    /// Packs this scan counts (1 for a pack, the known contents for a container).
    pub fn packs(&self) -> u64 {
        self.packs
    }
}

/// The rules' verdict on one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The worst verdict among the findings (`Accept` when none fired).
    pub verdict: Verdict,
    /// The primary reason: the first finding, or [`Reason::Ok`].
    pub reason: Reason,
    /// The primary message.
    pub message: String,
    /// Every rule that fired, most important first.
    pub findings: Vec<Finding>,
    /// GS1 error code and message when the barcode did not parse.
    pub gs1_error: Option<(String, String)>,
    /// Identifiers read from the barcode, as stored in the scan record.
    pub identifiers: Identifiers,
    /// What applying the scan counts.
    pub effect: Effect,
}

/// The server's verdict on one scan of a document, beside what the scanner showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The scan.
    pub scan_id: ScanId,
    /// The verdict the scanner's stored feedback stands for (`Warn` for a plain warning).
    pub device: Verdict,
    /// The rules' outcome on the server's reference data.
    pub outcome: Outcome,
}

impl Judgement {
    /// True when the scanner counted a scan that the rules, on the server's reference
    /// data, reject for a reason that data decides (e.g. picked offline from a lot
    /// recalled meanwhile): the goods moved against a rule the scanner could not know.
    /// Counting reasons (duplicate, over quantity…) are not overturns: both sides count
    /// the same scans the same way, and what only the merged document shows (the same
    /// pack on two scanners) is the projection's own check.
    pub fn overturned(&self) -> bool {
        self.device != Verdict::Reject
            && self
                .outcome
                .findings
                .iter()
                .any(|f| f.verdict == Verdict::Reject && f.reason.depends_on_reference())
    }
}

/// Identifiers of a parse result (what the scan record stores): the GTIN and SSCC as
/// the parse checked them (AI 01 and 00 carry their check digit), the rest as GS1 text.
pub fn identifiers(data: &Gs1Data) -> Identifiers {
    let keep = |ai: &str| data.get(ai).map(str::to_owned);
    Identifiers {
        gtin: data.gtin(),
        serial: keep("21"),
        lot: keep("10"),
        expiry: keep("17"),
        sscc: data.sscc(),
    }
}
