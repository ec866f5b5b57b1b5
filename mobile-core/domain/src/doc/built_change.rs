//! The fast path for large batches of scans: [`TaskDocument::append_scan_records`] builds
//! the Automerge change itself, the same change a transaction would make, when that is
//! cheaper than a transaction per scan.

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjId, ReadDoc, ScalarValue};

use super::{DocError, K_SCANS, TaskDocument};
use crate::model::ScanId;

/// Batches of at least this many scans may be applied as one built change (see
/// [`TaskDocument::append_scan_records`]) …
const BUILT_CHANGE_MIN_SCANS: usize = 64;
/// … if they hold at least one scan per this many ops already in the document: a built
/// change costs ~0.2 µs per existing op on top of ~1.5 µs per scan, a transaction ~16 µs
/// per scan, so it wins from about one scan per 75 ops.
const BUILT_CHANGE_OPS_PER_SCAN: u64 = 64;

impl TaskDocument {
    /// Adds scans whose records are already encoded and valid, as one change by this
    /// document's actor, and returns that change's bytes (for the store's change log);
    /// all or nothing. The caller guarantees that no id is in the document or repeated
    /// (the store's id sets, or the checks of [`TaskDocument::add_scans`]): nothing here
    /// looks them up, which would cost about a third of a put.
    ///
    /// Why two ways: a put in a local transaction splices the new op into each of ~20
    /// columns of Automerge's op set, ~16 µs per scan (automerge 0.12, our test machine)
    /// whatever the batch size. Applying a ready-made change merges all its ops into the
    /// columns in one pass: ~1.5 µs per scan plus ~0.2 µs per op already in the
    /// document. So a large batch is built as a change (the same ops a transaction would
    /// make: one `put` of a bytes value per new key, no predecessors) and applied; a small
    /// one goes through a transaction.
    pub fn append_scan_records<'a>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (&'a ScanId, &'a [u8])>,
        time_s: i64,
    ) -> Result<Vec<u8>, DocError> {
        let n = entries.len();
        let built = n >= BUILT_CHANGE_MIN_SCANS
            && (n as u64).saturating_mul(BUILT_CHANGE_OPS_PER_SCAN) >= self.doc.stats().num_ops;
        self.append_records_with(entries, time_s, built)
    }

    /// [`TaskDocument::append_scan_records`] with the way chosen by the caller.
    pub(super) fn append_records_with<'a>(
        &mut self,
        entries: impl ExactSizeIterator<Item = (&'a ScanId, &'a [u8])>,
        time_s: i64,
        built: bool,
    ) -> Result<Vec<u8>, DocError> {
        if entries.len() == 0 {
            return Ok(Vec::new());
        }
        let scans = self.scans_obj()?.clone();
        if !built {
            for (id, record) in entries {
                if let Err(e) =
                    self.doc
                        .put(&scans, id.as_str(), ScalarValue::Bytes(record.to_vec()))
                {
                    self.doc.rollback();
                    return Err(e.into());
                }
            }
            self.doc
                .commit_with(CommitOptions::default().with_time(time_s));
            return Ok(self.last_local_change().unwrap_or_default());
        }
        let entries: Vec<_> = entries.collect();
        let mut use_tip = true;
        loop {
            let change = self.build_put_change(&scans, &entries, time_s, use_tip)?;
            let (hash, actor, seq) = (change.hash(), change.actor_id().clone(), change.seq());
            let bytes = change.raw_bytes().to_vec();
            match self.doc.apply_changes([change]) {
                Ok(()) => {}
                // A sequence number taken from `built_tip` is too low if this actor
                // committed since (a void, say): Automerge refuses the change whole, and
                // we ask Automerge for the number.
                Err(_) if use_tip && self.built_tip.take().is_some() => {
                    use_tip = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if !self.doc.get_heads().contains(&hash) {
                // Cannot happen (the deps are the current heads); never report a scan as
                // applied if it is not.
                return Err(DocError::Invalid {
                    path: K_SCANS.into(),
                    why: "built change was not applied".into(),
                });
            }
            // Again (see `build_put_change`): if this was the actor's first change,
            // Automerge only now finds it among the document's actors, so that
            // `last_local_change` sees this change.
            self.doc.set_actor(actor.clone());
            self.built_tip = Some((actor, seq));
            return Ok(bytes);
        }
    }

    /// One change by this document's actor on top of the current heads, putting each
    /// record under its key in `scans` (`obj`) as a new value. With `use_tip`, the
    /// sequence number follows the last built change by the same actor, if any.
    fn build_put_change(
        &mut self,
        obj: &ObjId,
        entries: &[(&ScanId, &[u8])],
        time_s: i64,
        use_tip: bool,
    ) -> Result<automerge::Change, DocError> {
        use automerge::legacy;
        let obj = match obj {
            ObjId::Id(counter, actor, _) => {
                legacy::ObjectId::Id(legacy::OpId(*counter, actor.clone()))
            }
            ObjId::Root => return Err(DocError::WrongType(K_SCANS.into())),
        };
        // Re-setting the actor makes Automerge look it up among the document's actors:
        // until then an actor that only appears in applied (rather than committed)
        // changes is not recognised as local, and its last change is not found.
        let actor = self.doc.get_actor().clone();
        self.doc.set_actor(actor.clone());
        // Automerge finds the actor's last sequence number by rebuilding its last change
        // (~0.5 µs per op: milliseconds after a large batch), so remember our own.
        let last_seq = match &self.built_tip {
            Some((a, seq)) if use_tip && *a == actor => *seq,
            _ => self.doc.get_last_local_change().map_or(0, |c| c.seq()),
        };
        let seq = last_seq + 1;
        let deps = self.doc.get_heads();
        // Op counters continue after the largest in the document, which is the largest
        // `max_op` of the heads (every change's ops come after those of its deps).
        let max_op = deps
            .iter()
            .filter_map(|h| self.doc.get_change_meta_by_hash(h).map(|m| m.max_op))
            .max()
            .unwrap_or(0);
        let start_op = max_op
            .checked_add(1)
            .and_then(std::num::NonZeroU64::new)
            .ok_or_else(|| DocError::Invalid {
                path: K_SCANS.into(),
                why: "op counter exhausted".into(),
            })?;
        let operations = entries
            .iter()
            .map(|(id, record)| legacy::Op {
                action: legacy::OpType::Put(ScalarValue::Bytes(record.to_vec())),
                obj: obj.clone(),
                key: legacy::Key::Map(id.as_str().into()),
                pred: legacy::SortedVec::new(),
                insert: false,
            })
            .collect();
        Ok(automerge::Change::from(automerge::ExpandedChange {
            operations,
            actor_id: actor,
            hash: None,
            seq,
            start_op,
            time: time_s,
            message: None,
            deps,
            extra_bytes: Vec::new(),
            author: None,
        }))
    }
}
