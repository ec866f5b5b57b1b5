//! Scan rules, shared by the scanner (offline, instantly) and the server (at projection).
//!
//! Owns the verdict on one scan: accept, warn or reject, with a stable [`Reason`] code and
//! a short message a picker understands. Pure functions over the parse result, the task's
//! state ([`TaskState`]: kind, expected lines and units, what is already counted) and the
//! site's [`ReferenceData`]. No I/O and no clock: "today" is an argument.
//!
//! ```
//! use swt_domain::doc::{Expected, ExpectedLine, Header, TaskKind, TaskStatus};
//! use swt_domain::gs1::{parse, Date, ParseOptions};
//! use swt_domain::model::ReferenceData;
//! use swt_domain::rules::{Reason, TaskState, Verdict};
//! let header = Header { kind: TaskKind::Picking, site: "s1".into(),
//!                       refs: Default::default(), status: TaskStatus::Open };
//! let expected = Expected { lines: vec![ExpectedLine { gtin: "09506000134352".into(),
//!                           quantity: 1, lot: None }], units: vec![] };
//! let mut task = TaskState::new(&header, &expected);
//! let raw = b"]d2010950600013435221SER1";
//! let parsed = parse(raw, &ParseOptions::default());
//! let today = Date::new(2026, 11, 24).unwrap();
//! let out = task.evaluate(raw, &parsed, &ReferenceData::default(), today);
//! assert_eq!(out.verdict, Verdict::Warn); // the product master is empty: unknown_product
//! task.apply(&"d.1".parse().unwrap(), &out);
//! let again = task.evaluate(raw, &parsed, &ReferenceData::default(), today);
//! assert_eq!(again.reason, Reason::Duplicate);
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::doc::{DocError, Expected, ExpectedLine, Header, TaskDocument, TaskKind, TaskStatus};
use crate::gs1::{Date, ErrorKind, Gs1Data, Gs1Error, ParseOptions, WarningKind, parse};
use crate::model::{ExpiryPolicy, Feedback, Identifiers, ReferenceData, Scan, ScanId, ScanRecord};
use crate::unit::{sgtin_key, split_sgtin, sscc_key};

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
        /// The kind of label does not belong in this kind of task (see [`TaskState::evaluate`]).
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

/// What counting a scan adds to the task (empty for rejected scans).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effect {
    /// Unit ids newly counted (`sgtin:…` packs, `sscc:…` containers and their contents).
    keys: Vec<String>,
    /// Expected line indexes incremented, once per pack.
    lines: Vec<usize>,
    /// Packs counted (serialized or not, allocated to a line or not).
    packs: u64,
    /// Containers counted (scanned or inside a scanned container).
    containers: u64,
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

/// Identifiers of a parse result, as GS1 text (what the scan record stores).
pub fn identifiers(data: &Gs1Data) -> Identifiers {
    let keep = |ai: &str| data.get(ai).map(str::to_owned);
    Identifiers {
        gtin: keep("01"),
        serial: keep("21"),
        lot: keep("10"),
        expiry: keep("17"),
        sscc: keep("00"),
    }
}

/// Days since 1970-01-01 of a calendar date (Howard Hinnant's algorithm).
pub fn days_from_civil(d: Date) -> i64 {
    let y = i64::from(d.year) - i64::from(d.month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(d.month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar date of a Unix time in milliseconds (the session's "today").
pub fn date_from_unix_ms(ms: u64) -> Date {
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
    Date { year, month, day }
}

/// Largest number of known units a container scan walks (a pallet holds thousands of
/// packs; the cap only stops a malformed hierarchy from stalling a scan).
const MAX_CONTENTS: usize = 100_000;

/// The rules' view of one task: what is expected and what is already counted.
///
/// Built from the header and expected section, then fed every scan in order
/// ([`TaskState::apply`] after [`TaskState::evaluate`] on the device,
/// [`TaskState::replay`] for scans read back from a document) and every void
/// ([`TaskState::void`]). Keeps indexes so a verdict costs O(1) however many scans the
/// task holds.
#[derive(Debug, Clone)]
pub struct TaskState {
    kind: TaskKind,
    site: String,
    status: TaskStatus,
    lines: Vec<ExpectedLine>,
    line_counts: Vec<u64>,
    /// Expected unit ids.
    units: HashSet<String>,
    /// Parent unit id → children unit ids.
    children: HashMap<String, Vec<String>>,
    /// Expected `sgtin:` units (the target when there are no lines).
    expected_packs: u64,
    /// Counted unit id → the scan that counted it.
    counted: HashMap<String, ScanId>,
    effects: HashMap<ScanId, Effect>,
    /// Scans recorded but not counted (rejected), so replays and voids stay exact.
    rejected: HashSet<ScanId>,
    packs: u64,
    containers: u64,
    scans_total: u64,
    scans_rejected: u64,
    scans_voided: u64,
}

/// Task progress for the picker's screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Expected lines.
    pub lines_total: u64,
    /// Lines with their full quantity counted.
    pub lines_complete: u64,
    /// Packs expected (sum of line quantities; without lines, the known expected packs).
    pub units_expected: u64,
    /// Packs counted toward that target (capped per line).
    pub units_counted: u64,
    /// Every pack counted, over quantity and unexpected ones included.
    pub packs_counted: u64,
    /// Containers counted (scanned, or inside a scanned container).
    pub containers_counted: u64,
    /// Scans recorded (rejected and voided included).
    pub scans_total: u64,
    /// Scans rejected (not counted).
    pub scans_rejected: u64,
    /// Scans voided by their user.
    pub scans_voided: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lines_total > 0 {
            write!(
                f,
                "{} of {} lines complete, {} of {} units",
                self.lines_complete, self.lines_total, self.units_counted, self.units_expected
            )
        } else {
            write!(f, "{} packs counted", self.packs_counted)
        }
    }
}

enum Alloc {
    Line(usize),
    NoLine,
    WrongLot,
    Full,
}

struct Findings {
    list: Vec<Finding>,
    kind: TaskKind,
    policy: ExpiryPolicy,
}

impl Findings {
    fn push(&mut self, reason: Reason, message: String) {
        let verdict = reason.verdict(self.kind, &self.policy);
        self.list.push(Finding {
            reason,
            verdict,
            message,
        });
    }

    fn rejected(&self) -> bool {
        self.list.iter().any(|f| f.verdict == Verdict::Reject)
    }
}

impl TaskState {
    /// A task with nothing counted yet.
    pub fn new(header: &Header, expected: &Expected) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        let mut units = HashSet::with_capacity(expected.units.len());
        let mut expected_packs = 0;
        for u in &expected.units {
            units.insert(u.id.clone());
            if u.id.starts_with("sgtin:") {
                expected_packs += 1;
            }
            if let Some(p) = &u.parent {
                children.entry(p.clone()).or_default().push(u.id.clone());
            }
        }
        Self {
            kind: header.kind,
            site: header.site.clone(),
            status: header.status,
            line_counts: vec![0; expected.lines.len()],
            lines: expected.lines.clone(),
            units,
            children,
            expected_packs,
            counted: HashMap::new(),
            effects: HashMap::new(),
            rejected: HashSet::new(),
            packs: 0,
            containers: 0,
            scans_total: 0,
            scans_rejected: 0,
            scans_voided: 0,
        }
    }

    /// Builds the state of a document: its header and expectations, then its scans in
    /// device-time order (counted as their stored feedback says) and its voids.
    pub fn from_document(doc: &TaskDocument, reference: &ReferenceData) -> Result<Self, DocError> {
        Self::walk(doc, reference, |_, _, _| {})
    }

    /// The authoritative judgement of every scan of a document: each scan is judged
    /// afresh, with the same rules the scanner ran, against `reference` (the server's
    /// current reference data), as of the day its device clock gives, in the order the
    /// scanners recorded them; then it is counted as its stored feedback says, because
    /// that is what the picker was told and did. So a verdict differs from the device's
    /// only where the reference data differs (a recall the scanner did not know yet),
    /// never because two judges counted differently.
    pub fn judge_document(
        doc: &TaskDocument,
        reference: &ReferenceData,
    ) -> Result<Vec<Judgement>, DocError> {
        let mut out = Vec::new();
        Self::walk(doc, reference, |st, id, scan| {
            let parsed = parse(scan.raw, &ParseOptions::default());
            let today = date_from_unix_ms(scan.device_time_ms);
            let outcome = st.evaluate(scan.raw, &parsed, reference, today);
            let device = Reason::from_feedback(scan.feedback).map_or(Verdict::Warn, |r| {
                r.verdict(st.kind, &reference.expiry_policy)
            });
            out.push(Judgement {
                scan_id: id.clone(),
                device,
                outcome,
            });
        })?;
        Ok(out)
    }

    /// Replays a document's scans and voids in device-time order, calling `before` with
    /// the state as it was just before each scan is counted.
    fn walk(
        doc: &TaskDocument,
        reference: &ReferenceData,
        mut before: impl FnMut(&TaskState, &ScanId, &ScanRecord<'_>),
    ) -> Result<Self, DocError> {
        let mut st = Self::new(&doc.header()?, &doc.expected()?);
        // Scans and voids in device-time order, so a pack scanned again after its first
        // scan was voided counts, as it did on the scanner. Two sorted lists merged (equal
        // times: scans first) rather than one boxed event list: opening a 10k-scan task
        // is dominated by this rebuild, mostly allocations.
        // Records decoded in place (no owned `Scan` per stored scan): on open this loop
        // is most of the work. A record that does not decode is skipped, as before.
        let records: Vec<_> = doc.scan_records().into_iter().flatten().collect();
        let scans: Vec<(&ScanId, ScanRecord<'_>)> = records
            .iter()
            .filter_map(|(id, bytes)| ScanRecord::decode(bytes).ok().map(|r| (id, r)))
            .collect();
        // Sort small (time, index) pairs rather than moving the records; the index breaks
        // ties, so equal times keep id order as before.
        let mut order: Vec<(u64, usize)> = scans
            .iter()
            .enumerate()
            .map(|(i, (_, r))| (r.device_time_ms, i))
            .collect();
        order.sort_unstable();
        let mut voids: Vec<(u64, ScanId)> = doc
            .voids()
            .into_iter()
            .flatten()
            .map(|v| (v.device_time_ms, v.scan_id))
            .collect();
        voids.sort_by_key(|(t, _)| *t);
        st.counted.reserve(scans.len());
        st.effects.reserve(scans.len());
        let mut voids = voids.into_iter().peekable();
        for (id, scan) in order.iter().map(|&(_, i)| &scans[i]) {
            while let Some((_, void)) = voids.next_if(|(t, _)| *t < scan.device_time_ms) {
                st.void(&void);
            }
            before(&st, id, scan);
            st.replay_record(id, scan, reference);
        }
        for (_, id) in voids {
            st.void(&id);
        }
        Ok(st)
    }

    /// The task kind.
    pub fn kind(&self) -> TaskKind {
        self.kind
    }

    /// The task's site (whose reference data applies).
    pub fn site(&self) -> &str {
        &self.site
    }

    /// Updates the header (status changes arrive by sync).
    pub fn set_header(&mut self, header: &Header) {
        self.kind = header.kind;
        self.site = header.site.clone();
        self.status = header.status;
    }

    /// True if a container of this kind of task may be scanned (SSCC labels).
    fn takes_containers(&self) -> bool {
        self.kind != TaskKind::Returns
    }

    /// True if single packs may be scanned.
    fn takes_packs(&self) -> bool {
        self.kind != TaskKind::Shipping
    }

    fn has_expectations(&self) -> bool {
        !self.lines.is_empty() || !self.units.is_empty()
    }

    fn allocate(&self, gtin: &str, lot: Option<&str>, extra: &[usize]) -> Alloc {
        let mut any_gtin = false;
        let mut any_lot = false;
        for (i, l) in self.lines.iter().enumerate() {
            if l.gtin != gtin {
                continue;
            }
            any_gtin = true;
            if let (Some(want), Some(got)) = (l.lot.as_deref(), lot)
                && want != got
            {
                continue;
            }
            any_lot = true;
            let pending = extra.iter().filter(|&&j| j == i).count() as u64;
            if self.line_counts[i] + pending < l.quantity {
                return Alloc::Line(i);
            }
        }
        match (any_gtin, any_lot) {
            (false, _) => Alloc::NoLine,
            (true, false) => Alloc::WrongLot,
            (true, true) => Alloc::Full,
        }
    }

    /// Known contents of a container, depth first, containers included.
    fn contents(&self, root: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack: Vec<&str> = vec![root];
        while let Some(k) = stack.pop() {
            if let Some(kids) = self.children.get(k) {
                for c in kids {
                    if out.len() >= MAX_CONTENTS {
                        return out;
                    }
                    if seen.insert(c.as_str()) {
                        out.push(c.as_str());
                        stack.push(c.as_str());
                    }
                }
            }
        }
        out
    }

    /// Evaluates one scan without changing the state.
    ///
    /// `wrong_task_kind` means the label is not what this kind of task takes: an SSCC
    /// (container) in a returns session (returns are verified pack by pack), a single pack
    /// in a shipping task (shipping scans containers), a GS1 code that identifies neither
    /// a pack (AI 01) nor a container (AI 00), e.g. a location GLN; or a task of another
    /// site than the scanner's reference data (its recalls and blocks would be the wrong
    /// ones). Checks run in the order of [`Reason::ALL`]; every rule that fires is listed.
    pub fn evaluate(
        &self,
        raw: &[u8],
        parsed: &Result<Gs1Data, Gs1Error>,
        reference: &ReferenceData,
        today: Date,
    ) -> Outcome {
        let mut f = Findings {
            list: Vec::new(),
            kind: self.kind,
            policy: reference.expiry_policy.clone(),
        };
        let mut effect = Effect::default();
        let mut gs1_error = None;
        let mut ids = Identifiers::default();
        match parsed {
            Err(e) => {
                // The message is put together here, once, for the feedback and the record.
                let text = e.message();
                gs1_error = Some((e.code().to_owned(), text.clone().into_owned()));
                let msg = if raw.is_empty() {
                    "Nothing was read: scan again".to_owned()
                } else if e.kind() == ErrorKind::NotGs1 {
                    // Plain data (a `]d1`/`]Q1` symbol, a non-GS1 URI) read well: the label is
                    // the wrong one, not damaged.
                    "Not a GS1 barcode: scan the pack's DataMatrix".to_owned()
                } else {
                    format!("Unreadable barcode: {text}")
                };
                f.push(Reason::InvalidBarcode, msg);
            }
            Ok(data) => {
                ids = identifiers(data);
                if !data.is_gs1() {
                    gs1_error = Some((
                        "not_gs1".to_owned(),
                        "the code holds no GS1 data".to_owned(),
                    ));
                    f.push(
                        Reason::InvalidBarcode,
                        "Not a GS1 barcode: scan the pack's DataMatrix".to_owned(),
                    );
                } else {
                    self.check_gs1(data, &ids, reference, today, &mut f, &mut effect);
                }
            }
        }
        let verdict = f
            .list
            .iter()
            .map(|x| x.verdict)
            .max()
            .unwrap_or(Verdict::Accept);
        // The picker sees the most severe finding first; ties keep rule order.
        f.list.sort_by_key(|x| std::cmp::Reverse(x.verdict));
        if verdict == Verdict::Reject {
            effect = Effect::default();
        }
        let (reason, message) = match f.list.first() {
            Some(x) => (x.reason, x.message.clone()),
            None => (Reason::Ok, "OK".to_owned()),
        };
        Outcome {
            verdict,
            reason,
            message,
            findings: f.list,
            gs1_error,
            identifiers: ids,
            effect,
        }
    }

    fn check_gs1(
        &self,
        data: &Gs1Data,
        ids: &Identifiers,
        reference: &ReferenceData,
        today: Date,
        f: &mut Findings,
        effect: &mut Effect,
    ) {
        if self.status != TaskStatus::Open {
            f.push(
                Reason::TaskClosed,
                format!("Task is {}: no more scans", self.status.as_str()),
            );
        }
        if !reference.site.is_empty() && !self.site.is_empty() && reference.site != self.site {
            f.push(
                Reason::WrongTaskKind,
                format!(
                    "Task is for site {}, this scanner for site {}",
                    self.site, reference.site
                ),
            );
        }
        if let Some(sscc) = &ids.sscc {
            self.check_container(sscc, reference, f, effect);
        } else if let Some(gtin) = &ids.gtin {
            self.check_pack(gtin, ids, reference, today, f, effect);
        } else {
            f.push(
                Reason::WrongTaskKind,
                "Not a pack or container label".to_owned(),
            );
        }
        if let Some(w) = data
            .warnings()
            .iter()
            .find(|w| w.kind() == WarningKind::SuspectMissingSeparator)
        {
            f.push(
                Reason::SeparatorSuspected,
                format!(
                    "Check the label: AI ({}) may have swallowed another field (scanner FNC1 setting?)",
                    w.ai()
                ),
            );
        }
    }

    fn check_container(
        &self,
        sscc: &str,
        reference: &ReferenceData,
        f: &mut Findings,
        effect: &mut Effect,
    ) {
        if !self.takes_containers() {
            f.push(
                Reason::WrongTaskKind,
                format!(
                    "{} takes single packs, not cases or pallets",
                    kind_name(self.kind)
                ),
            );
            return;
        }
        let key = sscc_key(sscc);
        if let Some(by) = self.counted.get(&key) {
            f.push(
                Reason::Duplicate,
                format!("Container already counted (scan {by})"),
            );
            return;
        }
        if self.has_expectations() && !self.units.contains(&key) {
            f.push(
                Reason::NotExpected,
                "Container not expected in this task".to_owned(),
            );
        }
        let contents = self.contents(&key);
        for c in &contents {
            if let Some((g, s)) = split_sgtin(c)
                && reference.is_blocked(g, s)
            {
                f.push(
                    Reason::BlockedSerial,
                    format!("Contains blocked pack {g} / {s}: put aside"),
                );
                break;
            }
        }
        effect.containers += 1;
        effect.keys.push(key);
        let mut over = false;
        let mut not_expected = false;
        for c in contents {
            if self.counted.contains_key(c) {
                continue; // already counted on its own or in another container
            }
            effect.keys.push(c.to_owned());
            match split_sgtin(c) {
                Some((g, _)) => {
                    effect.packs += 1;
                    // Lots of known contents are not in the hierarchy: any line of the
                    // GTIN takes them (the sender's packing data is the evidence).
                    match self.allocate(g, None, &effect.lines) {
                        Alloc::Line(i) => effect.lines.push(i),
                        Alloc::Full | Alloc::WrongLot => over = true,
                        Alloc::NoLine => not_expected |= !self.lines.is_empty(),
                    }
                }
                None => effect.containers += 1,
            }
        }
        if over {
            f.push(
                Reason::OverQuantity,
                "Contents exceed the expected quantity".to_owned(),
            );
        }
        if not_expected {
            f.push(
                Reason::NotExpected,
                "Contents include products not expected".to_owned(),
            );
        }
    }

    fn check_pack(
        &self,
        gtin: &str,
        ids: &Identifiers,
        reference: &ReferenceData,
        today: Date,
        f: &mut Findings,
        effect: &mut Effect,
    ) {
        if !self.takes_packs() {
            f.push(
                Reason::WrongTaskKind,
                "Shipping takes cases and pallets: scan the SSCC label".to_owned(),
            );
            return;
        }
        let key = ids.serial.as_deref().map(|s| sgtin_key(gtin, s));
        if let Some(k) = &key
            && let Some(by) = self.counted.get(k)
        {
            let how = if self.effects.get(by).is_some_and(|e| e.containers > 0) {
                "inside a container already counted"
            } else {
                "already scanned"
            };
            f.push(Reason::Duplicate, format!("Same pack {how} (scan {by})"));
        }
        if let Some(s) = &ids.serial
            && reference.is_blocked(gtin, s)
        {
            f.push(
                Reason::BlockedSerial,
                "Pack is blocked (quarantined/suspect): put aside".to_owned(),
            );
        }
        if let Some(l) = &ids.lot
            && reference.is_recalled(gtin, l)
        {
            f.push(
                Reason::RecalledLot,
                format!("Lot {l} is recalled: put aside"),
            );
        }
        let policy = &reference.expiry_policy;
        if let Some(exp) = ids
            .expiry
            .as_deref()
            .and_then(|e| Date::from_yymmdd(e, today.year))
        {
            let left = days_from_civil(exp) - days_from_civil(today);
            if left < 0 {
                f.push(Reason::Expired, format!("Expired on {exp}"));
            } else if left < i64::from(policy.min_remaining_days) {
                f.push(
                    Reason::ExpiresSoon,
                    format!(
                        "Expires {exp}: under {} days left",
                        policy.min_remaining_days
                    ),
                );
            }
        }
        let unit_expected = key.as_ref().is_some_and(|k| self.units.contains(k));
        match self.allocate(gtin, ids.lot.as_deref(), &[]) {
            Alloc::Line(i) => effect.lines.push(i),
            Alloc::NoLine if unit_expected || !self.has_expectations() => {}
            Alloc::NoLine => f.push(
                Reason::NotExpected,
                "Product not expected in this task".to_owned(),
            ),
            Alloc::WrongLot => f.push(
                Reason::WrongLot,
                format!(
                    "Wrong lot {}: expected {}",
                    ids.lot.as_deref().unwrap_or("(none)"),
                    self.expected_lots(gtin)
                ),
            ),
            Alloc::Full => f.push(
                Reason::OverQuantity,
                "Line already complete: too many".to_owned(),
            ),
        }
        if !reference.products.contains_key(gtin) {
            f.push(
                Reason::UnknownProduct,
                "Product not in the product master".to_owned(),
            );
        }
        if !f.rejected() {
            effect.packs += 1;
            if let Some(k) = key {
                effect.keys.push(k);
            }
        }
    }

    fn expected_lots(&self, gtin: &str) -> String {
        let lots: Vec<&str> = self
            .lines
            .iter()
            .filter(|l| l.gtin == gtin)
            .filter_map(|l| l.lot.as_deref())
            .collect();
        lots.join(", ")
    }

    /// Counts an evaluated scan (nothing for a rejected one).
    pub fn apply(&mut self, scan_id: &ScanId, outcome: &Outcome) {
        self.scans_total += 1;
        if outcome.verdict == Verdict::Reject {
            self.scans_rejected += 1;
            self.rejected.insert(scan_id.clone());
            return;
        }
        self.apply_effect(scan_id, outcome.effect.clone());
    }

    fn apply_effect(&mut self, scan_id: &ScanId, effect: Effect) {
        for k in &effect.keys {
            self.counted.insert(k.clone(), scan_id.clone());
        }
        for &i in &effect.lines {
            if let Some(c) = self.line_counts.get_mut(i) {
                *c += 1;
            }
        }
        self.packs += effect.packs;
        self.containers += effect.containers;
        self.effects.insert(scan_id.clone(), effect);
    }

    /// Counts a scan read back from a document (this device's after a restart, or another
    /// device's after a sync) as its stored feedback says, without re-judging it: the
    /// reference data may have changed since, and the picker saw that feedback.
    pub fn replay(&mut self, scan: &Scan, reference: &ReferenceData) {
        self.replay_record(&scan.id, &scan.as_record(), reference);
    }

    /// [`TaskState::replay`] of a record decoded in place, stored under `id`.
    pub fn replay_record(&mut self, id: &ScanId, scan: &ScanRecord<'_>, reference: &ReferenceData) {
        if self.effects.contains_key(id) || self.rejected.contains(id) {
            return;
        }
        self.scans_total += 1;
        let counted = Reason::from_feedback(scan.feedback)
            .is_none_or(|r| r.verdict(self.kind, &reference.expiry_policy) != Verdict::Reject);
        if !counted {
            self.scans_rejected += 1;
            self.rejected.insert(id.clone());
            return;
        }
        let mut effect = Effect::default();
        if let Some(sscc) = scan.sscc {
            let key = sscc_key(sscc);
            if self.counted.contains_key(&key) {
                self.effects.insert(id.clone(), effect);
                return;
            }
            let contents: Vec<String> = self
                .contents(&key)
                .into_iter()
                .filter(|c| !self.counted.contains_key(*c))
                .map(str::to_owned)
                .collect();
            effect.keys.push(key);
            effect.containers += 1;
            for c in contents {
                match split_sgtin(&c) {
                    Some((g, _)) => {
                        effect.packs += 1;
                        if let Alloc::Line(i) = self.allocate(g, None, &effect.lines) {
                            effect.lines.push(i);
                        }
                    }
                    None => effect.containers += 1,
                }
                effect.keys.push(c);
            }
        } else if let Some(gtin) = scan.gtin {
            let key = scan.serial.map(|s| sgtin_key(gtin, s));
            if key.as_ref().is_some_and(|k| self.counted.contains_key(k)) {
                // Merged from two devices: the first counts, the server flags the second.
                self.effects.insert(id.clone(), effect);
                return;
            }
            effect.packs = 1;
            if let Alloc::Line(i) = self.allocate(gtin, scan.lot, &[]) {
                effect.lines.push(i);
            }
            effect.keys.extend(key);
        }
        self.apply_effect(id, effect);
    }

    /// Takes a voided scan's counts back. Unknown or already voided ids change nothing
    /// (and return false).
    pub fn void(&mut self, scan_id: &ScanId) -> bool {
        if self.rejected.remove(scan_id) {
            self.scans_voided += 1;
            return true;
        }
        let Some(effect) = self.effects.remove(scan_id) else {
            return false;
        };
        for k in &effect.keys {
            if self.counted.get(k) == Some(scan_id) {
                self.counted.remove(k);
            }
        }
        for &i in &effect.lines {
            if let Some(c) = self.line_counts.get_mut(i) {
                *c = c.saturating_sub(1);
            }
        }
        self.packs = self.packs.saturating_sub(effect.packs);
        self.containers = self.containers.saturating_sub(effect.containers);
        self.scans_voided += 1;
        true
    }

    /// True if the scan is counted (known and neither rejected nor voided).
    pub fn is_counted(&self, scan_id: &ScanId) -> bool {
        self.effects.contains_key(scan_id)
    }

    /// True if the scan is known and not voided (counted or rejected).
    pub fn is_live(&self, scan_id: &ScanId) -> bool {
        self.effects.contains_key(scan_id) || self.rejected.contains(scan_id)
    }

    /// Progress so far.
    pub fn progress(&self) -> Progress {
        let (units_expected, units_counted, lines_complete) = if self.lines.is_empty() {
            let counted = self
                .counted
                .keys()
                .filter(|k| k.starts_with("sgtin:") && self.units.contains(*k))
                .count() as u64;
            (self.expected_packs, counted, 0)
        } else {
            let mut exp = 0;
            let mut got = 0;
            let mut done = 0;
            for (l, &c) in self.lines.iter().zip(&self.line_counts) {
                exp += l.quantity;
                got += c.min(l.quantity);
                done += u64::from(c >= l.quantity);
            }
            (exp, got, done)
        };
        Progress {
            lines_total: self.lines.len() as u64,
            lines_complete,
            units_expected,
            units_counted,
            packs_counted: self.packs,
            containers_counted: self.containers,
            scans_total: self.scans_total,
            scans_rejected: self.scans_rejected,
            scans_voided: self.scans_voided,
        }
    }
}

fn kind_name(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Receiving => "Receiving",
        TaskKind::Picking => "Picking",
        TaskKind::Packing => "Packing",
        TaskKind::Shipping => "Shipping",
        TaskKind::Returns => "Returns",
        TaskKind::StockCount => "Stock count",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::ExpectedUnit;
    use crate::gs1::{ParseOptions, parse};
    use crate::model::Product;

    const G1: &str = "09506000134352";
    const G2: &str = "04150123456782";
    /// Valid GTIN, not in the product master.
    const G3: &str = "00312345678906";
    const SSCC1: &str = "009506000100000018";
    const SSCC2: &str = "009506000100000025";
    const SSCC3: &str = "009506000100000032";

    fn today() -> Date {
        Date::new(2026, 11, 24).unwrap()
    }

    fn pack_with(gtin: &str, serial: &str, lot: &str, exp: &str) -> Vec<u8> {
        format!("]d201{gtin}17{exp}10{lot}\u{1d}21{serial}").into_bytes()
    }

    fn pack(serial: &str) -> Vec<u8> {
        pack_with(G1, serial, "LOT1", "280131")
    }

    fn sscc(s: &str) -> Vec<u8> {
        format!("]C100{s}").into_bytes()
    }

    fn reference() -> ReferenceData {
        let mut r = ReferenceData {
            site: "s1".into(),
            version: 1,
            expiry_policy: ExpiryPolicy {
                min_remaining_days: 90,
                reject_expired: true,
            },
            ..Default::default()
        };
        for g in [G1, G2] {
            r.products.insert(
                g.into(),
                Product {
                    gtin: g.into(),
                    name: "Product".into(),
                    serialized: true,
                    ndc: None,
                    pack_size: None,
                },
            );
        }
        r.recall(G1, "RECALL");
        r.block(G1, "BLOCKED");
        r
    }

    type Line<'a> = (&'a str, u64, Option<&'a str>);

    fn task(kind: TaskKind, lines: &[Line<'_>], units: &[(&str, Option<&str>)]) -> TaskState {
        let header = Header {
            kind,
            site: "s1".into(),
            refs: Default::default(),
            status: TaskStatus::Open,
        };
        let expected = Expected {
            lines: lines
                .iter()
                .map(|(g, q, l)| ExpectedLine {
                    gtin: (*g).into(),
                    quantity: *q,
                    lot: l.map(Into::into),
                })
                .collect(),
            units: units
                .iter()
                .map(|(id, p)| ExpectedUnit {
                    id: (*id).into(),
                    parent: p.map(Into::into),
                })
                .collect(),
        };
        TaskState::new(&header, &expected)
    }

    fn record(st: &mut TaskState, raw: &[u8], r: &ReferenceData) -> Outcome {
        let parsed = parse(raw, &ParseOptions::default());
        let out = st.evaluate(raw, &parsed, r, today());
        let id = ScanId::from_device_counter("t", st.scans_total).unwrap();
        st.apply(&id, &out);
        out
    }

    fn hierarchy() -> Vec<(&'static str, Option<&'static str>)> {
        vec![
            ("sscc:009506000100000018", None),
            ("sscc:009506000100000025", Some("sscc:009506000100000018")),
            ("sgtin:09506000134352:A", Some("sscc:009506000100000025")),
            ("sgtin:09506000134352:B", Some("sscc:009506000100000025")),
            ("sgtin:09506000134352:C", Some("sscc:009506000100000018")),
        ]
    }

    struct Case {
        name: &'static str,
        kind: TaskKind,
        lines: Vec<Line<'static>>,
        units: Vec<(&'static str, Option<&'static str>)>,
        reference: fn(&mut ReferenceData),
        closed: bool,
        before: Vec<Vec<u8>>,
        raw: Vec<u8>,
        reason: Reason,
        verdict: Verdict,
    }

    fn keep(_: &mut ReferenceData) {}

    fn case(name: &'static str, raw: Vec<u8>, reason: Reason, verdict: Verdict) -> Case {
        Case {
            name,
            kind: TaskKind::Picking,
            lines: vec![(G1, 2, None)],
            units: vec![],
            reference: keep,
            closed: false,
            before: vec![],
            raw,
            reason,
            verdict,
        }
    }

    fn cases() -> Vec<Case> {
        use Reason as R;
        use Verdict as V;
        vec![
            case("ok", pack("S1"), R::Ok, V::Accept),
            case(
                "invalid_barcode",
                b"]d2019506".to_vec(),
                R::InvalidBarcode,
                V::Reject,
            ),
            case("empty read", vec![], R::InvalidBarcode, V::Reject),
            case(
                "not gs1",
                b"]Q1hello".to_vec(),
                R::InvalidBarcode,
                V::Reject,
            ),
            Case {
                lines: vec![(G3, 1, None)],
                ..case(
                    "unknown_product",
                    pack_with(G3, "S1", "L", "280131"),
                    R::UnknownProduct,
                    V::Warn,
                )
            },
            case(
                "not_expected picking",
                pack_with(G2, "S1", "L", "280131"),
                R::NotExpected,
                V::Reject,
            ),
            Case {
                kind: TaskKind::Receiving,
                ..case(
                    "not_expected receiving warns",
                    pack_with(G2, "S1", "L", "280131"),
                    R::NotExpected,
                    V::Warn,
                )
            },
            Case {
                lines: vec![],
                kind: TaskKind::StockCount,
                ..case(
                    "no expectations takes anything",
                    pack_with(G2, "S1", "L", "280131"),
                    R::Ok,
                    V::Accept,
                )
            },
            Case {
                lines: vec![(G1, 1, None)],
                before: vec![pack("S1")],
                ..case("over_quantity", pack("S2"), R::OverQuantity, V::Reject)
            },
            Case {
                lines: vec![(G1, 1, Some("LOTA")), (G1, 1, Some("LOTB"))],
                ..case("wrong_lot", pack("S1"), R::WrongLot, V::Reject)
            },
            Case {
                lines: vec![(G1, 1, Some("LOTA")), (G1, 1, Some("LOT1"))],
                ..case("second line takes the lot", pack("S1"), R::Ok, V::Accept)
            },
            Case {
                before: vec![pack("S1")],
                ..case("duplicate", pack("S1"), R::Duplicate, V::Reject)
            },
            case(
                "expired",
                pack_with(G1, "S1", "LOT1", "261123"),
                R::Expired,
                V::Reject,
            ),
            Case {
                reference: |r| r.expiry_policy.reject_expired = false,
                ..case(
                    "expired warns by policy",
                    pack_with(G1, "S1", "LOT1", "261123"),
                    R::Expired,
                    V::Warn,
                )
            },
            case(
                "expiry today is not expired",
                pack_with(G1, "S1", "LOT1", "261124"),
                R::ExpiresSoon,
                V::Warn,
            ),
            case(
                "expires_soon",
                pack_with(G1, "S1", "LOT1", "270101"),
                R::ExpiresSoon,
                V::Warn,
            ),
            case(
                "recalled_lot",
                pack_with(G1, "S1", "RECALL", "280131"),
                R::RecalledLot,
                V::Reject,
            ),
            case(
                "blocked_serial",
                pack("BLOCKED"),
                R::BlockedSerial,
                V::Reject,
            ),
            Case {
                closed: true,
                ..case("task_closed", pack("S1"), R::TaskClosed, V::Reject)
            },
            Case {
                kind: TaskKind::Returns,
                ..case(
                    "wrong_task_kind: container in returns",
                    sscc(SSCC1),
                    R::WrongTaskKind,
                    V::Reject,
                )
            },
            Case {
                kind: TaskKind::Shipping,
                ..case(
                    "wrong_task_kind: pack in shipping",
                    pack("S1"),
                    R::WrongTaskKind,
                    V::Reject,
                )
            },
            case(
                "wrong_task_kind: location label",
                b"]d24149506000134352".to_vec(),
                R::WrongTaskKind,
                V::Reject,
            ),
            Case {
                reference: |r| r.site = "s2".into(),
                ..case(
                    "wrong_task_kind: other site",
                    pack("S1"),
                    R::WrongTaskKind,
                    V::Reject,
                )
            },
            case(
                "separator_suspected",
                format!("]d201{G1}10LOT121SERIAL1\u{1d}17280131").into_bytes(),
                R::SeparatorSuspected,
                V::Warn,
            ),
            Case {
                kind: TaskKind::Receiving,
                lines: vec![(G1, 3, None)],
                units: hierarchy(),
                ..case("container ok", sscc(SSCC1), R::Ok, V::Accept)
            },
            Case {
                kind: TaskKind::Receiving,
                lines: vec![(G1, 3, None)],
                units: hierarchy(),
                before: vec![sscc(SSCC2)],
                ..case(
                    "pack inside counted case",
                    pack("A"),
                    R::Duplicate,
                    V::Reject,
                )
            },
            Case {
                kind: TaskKind::Receiving,
                lines: vec![(G1, 3, None)],
                units: hierarchy(),
                before: vec![sscc(SSCC1)],
                ..case(
                    "case inside counted pallet",
                    sscc(SSCC2),
                    R::Duplicate,
                    V::Reject,
                )
            },
            Case {
                kind: TaskKind::Receiving,
                lines: vec![(G1, 3, None)],
                units: hierarchy(),
                ..case(
                    "container not in hierarchy",
                    sscc(SSCC3),
                    R::NotExpected,
                    V::Warn,
                )
            },
            Case {
                kind: TaskKind::Picking,
                lines: vec![(G1, 2, None)],
                units: hierarchy(),
                ..case(
                    "pallet over the picked quantity",
                    sscc(SSCC1),
                    R::OverQuantity,
                    V::Reject,
                )
            },
            Case {
                kind: TaskKind::Receiving,
                lines: vec![(G1, 3, None)],
                units: vec![
                    ("sscc:009506000100000018", None),
                    (
                        "sgtin:09506000134352:BLOCKED",
                        Some("sscc:009506000100000018"),
                    ),
                ],
                ..case(
                    "container holding a blocked pack",
                    sscc(SSCC1),
                    R::BlockedSerial,
                    V::Reject,
                )
            },
        ]
    }

    #[test]
    fn every_reason_by_table() {
        let mut seen = HashSet::new();
        for c in cases() {
            let mut r = reference();
            (c.reference)(&mut r);
            let mut st = task(c.kind, &c.lines, &c.units);
            for b in &c.before {
                let o = record(&mut st, b, &r);
                assert_ne!(o.verdict, Verdict::Reject, "{}: setup scan {o:?}", c.name);
            }
            if c.closed {
                st.status = TaskStatus::Closed;
            }
            let parsed = parse(&c.raw, &ParseOptions::default());
            let out = st.evaluate(&c.raw, &parsed, &r, today());
            assert_eq!(
                (out.reason, out.verdict),
                (c.reason, c.verdict),
                "{}: {out:?}",
                c.name
            );
            assert!(!out.message.is_empty(), "{}", c.name);
            if c.reason == Reason::InvalidBarcode {
                assert!(out.gs1_error.is_some(), "{}", c.name);
            }
            seen.insert(c.reason);
        }
        for r in Reason::ALL {
            assert!(seen.contains(r), "no table case for {r}");
        }
    }

    /// A scanner's session of `raws` in one task, as the server receives it: each scan
    /// judged and counted on the scanner with `reference`, stored with its feedback.
    /// Returns the document and the scanner's outcomes in order.
    fn scanned(
        header: &Header,
        expected: &Expected,
        reference: &ReferenceData,
        raws: &[&Vec<u8>],
    ) -> (TaskDocument, Vec<(ScanId, Outcome)>) {
        let mut device = TaskState::new(header, expected);
        let mut doc = TaskDocument::create(crate::testing::server_actor(), header, 1).unwrap();
        doc.set_expected(expected, 1).unwrap();
        let start_ms = days_from_civil(today()) as u64 * 86_400_000 + 3_600_000;
        let mut given = Vec::new();
        for (n, raw) in raws.iter().enumerate() {
            let parsed = parse(raw, &ParseOptions::default());
            let out = device.evaluate(raw, &parsed, reference, today());
            let id = ScanId::from_device_counter("dev", n as u64).unwrap();
            device.apply(&id, &out);
            let scan = Scan {
                id: id.clone(),
                raw: (*raw).clone(),
                ids: out.identifiers.clone(),
                action: crate::model::Action::Pick,
                user: "u".into(),
                device: "dev".into(),
                location: None,
                device_time_ms: start_ms + n as u64,
                feedback: out.reason.feedback(),
                parent: None,
            };
            doc.add_scans(&[scan]).unwrap();
            given.push((id, out));
        }
        (doc, given)
    }

    /// The scanner's verdicts, stored in a document as its feedback, judged again the
    /// way the server does at projection: with the same reference data, every reason
    /// code comes out the same, and nothing is an overturn.
    #[test]
    fn the_server_judges_like_the_scanner_for_every_reason() {
        let mut seen = HashSet::new();
        for c in cases() {
            let mut r = reference();
            (c.reference)(&mut r);
            let header = Header {
                kind: c.kind,
                site: "s1".into(),
                refs: Default::default(),
                status: if c.closed {
                    TaskStatus::Closed
                } else {
                    TaskStatus::Open
                },
            };
            let expected = Expected {
                lines: c
                    .lines
                    .iter()
                    .map(|(g, q, l)| ExpectedLine {
                        gtin: (*g).into(),
                        quantity: *q,
                        lot: l.map(Into::into),
                    })
                    .collect(),
                units: c
                    .units
                    .iter()
                    .map(|(id, p)| ExpectedUnit {
                        id: (*id).into(),
                        parent: p.map(Into::into),
                    })
                    .collect(),
            };
            // The scanner: evaluate, count, store the feedback.
            let raws: Vec<&Vec<u8>> = c.before.iter().chain(std::iter::once(&c.raw)).collect();
            let (doc, given) = scanned(&header, &expected, &r, &raws);
            let judged = TaskState::judge_document(&doc, &r).unwrap();
            assert_eq!(judged.len(), given.len(), "{}", c.name);
            for (j, (id, out)) in judged.iter().zip(&given) {
                assert_eq!(&j.scan_id, id, "{}", c.name);
                assert_eq!(
                    (j.outcome.reason, j.outcome.verdict, j.device),
                    (out.reason, out.verdict, out.verdict),
                    "{}: server {:?}, scanner {:?}",
                    c.name,
                    j.outcome,
                    out
                );
                assert!(!j.overturned(), "{}", c.name);
            }
            seen.insert(c.reason);
        }
        for r in Reason::ALL {
            assert!(seen.contains(r), "no parity case for {r}");
        }
    }

    /// Reference data the scanner did not have: the server's verdict differs where that
    /// data decides, and only there is it an overturn.
    #[test]
    fn newer_reference_data_overturns_only_what_it_decides() {
        let header = Header {
            kind: TaskKind::Picking,
            site: "s1".into(),
            refs: Default::default(),
            status: TaskStatus::Open,
        };
        let expected = Expected {
            lines: vec![ExpectedLine {
                gtin: G1.into(),
                quantity: 5,
                lot: None,
            }],
            units: vec![],
        };
        let stale = reference();
        let mut fresh = reference();
        fresh.recall(G1, "LATE");
        let raws = [
            pack_with(G1, "A", "LATE", "280131"),
            pack_with(G1, "B", "LOT1", "280131"),
            pack_with(G1, "B", "LOT1", "280131"),
        ];
        let (doc, _) = scanned(&header, &expected, &stale, &raws.iter().collect::<Vec<_>>());
        let judged = TaskState::judge_document(&doc, &fresh).unwrap();
        let got: Vec<(Reason, bool)> = judged
            .iter()
            .map(|j| (j.outcome.reason, j.overturned()))
            .collect();
        assert_eq!(
            got,
            [
                (Reason::RecalledLot, true),
                (Reason::Ok, false),
                // The scanner itself refused the repeat: judged the same, no overturn.
                (Reason::Duplicate, false),
            ]
        );
    }

    #[test]
    fn task_closed_rejects() {
        let mut st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
        st.set_header(&Header {
            kind: TaskKind::Picking,
            site: "s1".into(),
            refs: Default::default(),
            status: TaskStatus::Closed,
        });
        let out = record(&mut st, &pack("S1"), &reference());
        assert_eq!(
            (out.reason, out.verdict),
            (Reason::TaskClosed, Verdict::Reject)
        );
        assert_eq!(st.progress().packs_counted, 0);
    }

    #[test]
    fn plain_data_is_not_a_gs1_barcode() {
        let st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
        for raw in [
            &b"]d1WH-A12-03"[..],
            b"]Q1hello",
            b"HtTpS://id.gs1.org/01/09506000134352",
        ] {
            let parsed = parse(raw, &ParseOptions::default());
            let out = st.evaluate(raw, &parsed, &reference(), today());
            assert_eq!(
                (out.reason, out.verdict),
                (Reason::InvalidBarcode, Verdict::Reject)
            );
            assert!(out.message.starts_with("Not a GS1 barcode"), "{out:?}");
            let (code, msg) = out.gs1_error.unwrap_or_default();
            assert_eq!(code, "not_gs1");
            assert!(msg.starts_with("not a GS1 barcode"), "{msg}");
        }
    }

    #[test]
    fn gs1_error_code_is_carried() {
        let st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
        let raw = format!("]d201{G1}17261331").into_bytes();
        let parsed = parse(&raw, &ParseOptions::default());
        let out = st.evaluate(&raw, &parsed, &reference(), today());
        let (code, msg) = out.gs1_error.unwrap();
        assert_eq!(code, parsed.unwrap_err().code());
        assert!(msg.contains("17"), "{msg}");
    }

    #[test]
    fn findings_list_every_rule_most_severe_first() {
        let st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
        let raw = pack_with(G1, "BLOCKED", "RECALL", "270101");
        let parsed = parse(&raw, &ParseOptions::default());
        let out = st.evaluate(&raw, &parsed, &reference(), today());
        let got: Vec<Reason> = out.findings.iter().map(|f| f.reason).collect();
        assert_eq!(
            got,
            [
                Reason::BlockedSerial,
                Reason::RecalledLot,
                Reason::ExpiresSoon
            ]
        );
        assert_eq!(
            out.effect,
            Effect::default(),
            "rejected scans count nothing"
        );
    }

    #[test]
    fn aggregation_counts_contents_and_void_takes_them_back() {
        let r = reference();
        let mut st = task(TaskKind::Receiving, &[(G1, 3, None)], &hierarchy());
        let out = record(&mut st, &sscc(SSCC1), &r);
        assert_eq!(out.effect.packs(), 3);
        let p = st.progress();
        assert_eq!((p.units_counted, p.units_expected), (3, 3));
        assert_eq!((p.lines_complete, p.containers_counted), (1, 2));
        assert_eq!(p.to_string(), "1 of 1 lines complete, 3 of 3 units");
        let id = ScanId::from_device_counter("t", 0).unwrap();
        assert!(st.void(&id));
        assert!(!st.void(&id), "a second void changes nothing");
        let p = st.progress();
        assert_eq!(
            (p.units_counted, p.packs_counted, p.scans_voided),
            (0, 0, 1)
        );
        // After the void the pack may be scanned on its own.
        assert_eq!(record(&mut st, &pack("A"), &r).reason, Reason::Ok);
        // And the pallet then counts only what is not yet counted.
        let out = record(&mut st, &sscc(SSCC1), &r);
        assert_eq!((out.reason, out.effect.packs()), (Reason::Ok, 2));
        assert_eq!(st.progress().units_counted, 3);
    }

    #[test]
    fn units_without_lines_are_the_target() {
        let r = reference();
        let mut st = task(TaskKind::Returns, &[], &hierarchy()[2..]);
        assert_eq!(record(&mut st, &pack("A"), &r).reason, Reason::Ok);
        assert_eq!(record(&mut st, &pack("Z"), &r).reason, Reason::NotExpected);
        let p = st.progress();
        assert_eq!(
            (p.units_counted, p.units_expected, p.packs_counted),
            (1, 3, 2)
        );
    }

    #[test]
    fn replay_counts_as_stored_feedback_says() {
        let r = reference();
        let mut live = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
        let mut replayed = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
        for (n, raw) in [pack("S1"), pack("S1"), pack("S2"), pack("S3")]
            .iter()
            .enumerate()
        {
            let parsed = parse(raw, &ParseOptions::default());
            let out = live.evaluate(raw, &parsed, &r, today());
            let id = ScanId::from_device_counter("d", n as u64).unwrap();
            live.apply(&id, &out);
            let scan = Scan {
                id,
                raw: raw.clone(),
                ids: out.identifiers.clone(),
                action: crate::model::Action::Pick,
                user: "u".into(),
                device: "d".into(),
                location: None,
                device_time_ms: n as u64,
                feedback: out.reason.feedback(),
                parent: None,
            };
            replayed.replay(&scan, &r);
            replayed.replay(&scan, &r); // idempotent
        }
        assert_eq!(live.progress(), replayed.progress());
        assert_eq!(live.progress().scans_rejected, 2);
    }

    #[test]
    fn feedback_codes_map_both_ways() {
        for r in Reason::ALL {
            assert_eq!(Reason::from_feedback(r.feedback()), Some(*r));
        }
        assert_eq!(Reason::from_feedback(Feedback::Warning), None);
        assert_eq!(Reason::InvalidBarcode.feedback().code(), 8);
        assert_eq!(Reason::WrongTaskKind.feedback().code(), 13);
        assert_eq!(Reason::TaskClosed.feedback().code(), 14);
    }

    #[test]
    fn calendar_arithmetic() {
        let d = Date::new(2026, 11, 24).unwrap();
        let days = days_from_civil(d);
        assert_eq!(days, 20_781); // 2026-01-01 is day 20,454
        assert_eq!(date_from_unix_ms(days as u64 * 86_400_000 + 86_399_999), d);
        assert_eq!(date_from_unix_ms(0), Date::new(1970, 1, 1).unwrap());
        assert_eq!(
            days_from_civil(Date::new(2028, 3, 1).unwrap())
                - days_from_civil(Date::new(2028, 2, 28).unwrap()),
            2
        );
    }
}
