//! Judging one scan against a task's state and the site's reference data:
//! [`TaskState::evaluate`] and its checks (GS1 data, containers, packs), which list every
//! rule that fires, most important first.

use std::collections::HashSet;

use super::{Effect, Finding, Outcome, Reason, TaskState, Verdict, days_from_civil, identifiers};
use crate::doc::{TaskKind, TaskStatus};
use crate::gs1::{Date, ErrorKind, Gs1Data, Gs1Error, WarningKind};
use crate::model::{ExpiryPolicy, Identifiers, ReferenceData};
use crate::unit::{sgtin_key, split_sgtin, sscc_key};

/// Largest number of known units a container scan walks (a pallet holds thousands of
/// packs; the cap only stops a malformed hierarchy from stalling a scan).
const MAX_CONTENTS: usize = 100_000;

pub(super) enum Alloc {
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

    pub(super) fn allocate(&self, gtin: &str, lot: Option<&str>, extra: &[usize]) -> Alloc {
        let mut any_gtin = false;
        let mut any_lot = false;
        for (i, l) in self.lines.iter().enumerate() {
            if l.gtin.as_str() != gtin {
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
    pub(super) fn contents(&self, root: &str) -> Vec<&str> {
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
            self.check_container(sscc.as_str(), reference, f, effect);
        } else if let Some(gtin) = &ids.gtin {
            self.check_pack(gtin.as_str(), ids, reference, today, f, effect);
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
            .filter(|l| l.gtin.as_str() == gtin)
            .filter_map(|l| l.lot.as_deref())
            .collect();
        lots.join(", ")
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
