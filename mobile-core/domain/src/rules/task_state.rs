//! [`TaskState`]: the rules' indexes of one task (expected lines and units, what is
//! counted by which scan), kept up to date scan by scan, void by void, and rebuilt from a
//! document; and the [`Progress`] it reports. Judging a scan is in `judge`.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::judge::Alloc;
use super::{Effect, Judgement, Outcome, Reason, Verdict, date_from_unix_ms};
use crate::doc::{DocError, Expected, ExpectedLine, Header, TaskDocument, TaskKind, TaskStatus};
use crate::gs1::{ParseOptions, parse};
use crate::model::{ReferenceData, Scan, ScanId, ScanRecord};
use crate::unit::{sgtin_key, split_sgtin, sscc_key};

/// The rules' view of one task: what is expected and what is already counted.
///
/// Built from the header and expected section, then fed every scan in order
/// ([`TaskState::apply`] after [`TaskState::evaluate`] on the device,
/// [`TaskState::replay`] for scans read back from a document) and every void
/// ([`TaskState::void`]). Keeps indexes so a verdict costs O(1) however many scans the
/// task holds.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub(super) kind: TaskKind,
    pub(super) site: String,
    pub(super) status: TaskStatus,
    pub(super) lines: Vec<ExpectedLine>,
    pub(super) line_counts: Vec<u64>,
    /// Expected unit ids.
    pub(super) units: HashSet<String>,
    /// Parent unit id → children unit ids.
    pub(super) children: HashMap<String, Vec<String>>,
    /// Expected `sgtin:` units (the target when there are no lines).
    pub(super) expected_packs: u64,
    /// Counted unit id → the scan that counted it.
    pub(super) counted: HashMap<String, ScanId>,
    pub(super) effects: HashMap<ScanId, Effect>,
    /// Scans recorded but not counted (rejected), so replays and voids stay exact.
    pub(super) rejected: HashSet<ScanId>,
    pub(super) packs: u64,
    pub(super) containers: u64,
    pub(super) scans_total: u64,
    pub(super) scans_rejected: u64,
    pub(super) scans_voided: u64,
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
