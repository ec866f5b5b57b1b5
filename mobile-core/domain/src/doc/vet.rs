//! Server-side vetting of device sync messages: a device may only add its own user's
//! scans and voids, under scan ids that carry its own actor, naming itself as the device,
//! within the document's bounds. The message is applied to a fork first; only if every
//! new change passes is the fork merged into the real document. Otherwise nothing is
//! applied.

use std::collections::HashSet;

use automerge::legacy::{Key, OpType};
use automerge::sync::SyncDoc;
use automerge::{ActorId, ROOT, ScalarValue};
use thiserror::Error;

use super::sync::{SyncError, SyncState, decode_message};
use super::{K_SCANS, TaskDocument, get_obj};
use crate::model::{Scan, ScanId, Void};

crate::code_table! {
    /// Machine-readable reason for refusing a device's message (the 403 body's `code`).
    pub enum RefusalReason {
        /// A new change was made by another actor than the calling device's.
        ForeignActor = "foreign_actor",
        /// A change touches a section the device does not own (root, header, expected, results).
        ServerSection = "server_section",
        /// A new scan or void names another user than the token's.
        WrongUser = "wrong_user",
        /// A change overwrites or deletes an existing scan, or writes one scan id twice.
        ScanRewritten = "scan_rewritten",
        /// A change overwrites or deletes an existing void.
        VoidRewritten = "void_rewritten",
        /// A scan or void value is not one valid encoded record (wrong type, bad id, garbage).
        MalformedRecord = "malformed_record",
        /// A void names a scan that is not in the document.
        UnknownScan = "unknown_scan",
        /// A void takes back a scan made by another user.
        NotOwnScan = "not_own_scan",
        /// A new scan's id does not start with the writing change's actor (hex) and `.`: a
        /// device may only use its own id space, so it can neither pre-empt another device's
        /// ids nor squat its next key.
        ForeignScanId = "foreign_scan_id",
        /// A new scan or void names another device than the calling one.
        WrongDevice = "wrong_device",
        /// A change carries something besides scans and voids: a commit message, extra
        /// bytes, or no operation at all (payload every other scanner would download).
        ChangePayload = "change_payload",
        /// The document is full ([`limits`]): the device continues in a follow-on document.
        DocumentFull = "document_full",
    }
    /// Stable snake_case code.
    fn code;
}

/// A refusal: why, which change, and a human detail for the manager's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason code.
    pub reason: RefusalReason,
    /// Hex hash of the offending change.
    pub change: String,
    /// Human-readable detail (no secrets).
    pub detail: String,
}

/// Outcome of [`vet_and_apply`] when it does not accept.
#[derive(Debug, Error)]
pub enum VetError {
    /// The message is not a valid sync message or its changes do not decode (answer 400).
    #[error(transparent)]
    Malformed(#[from] SyncError),
    /// The message breaks a rule; nothing was applied (answer 403 with `reason.code()`).
    #[error("refused ({}): {}", .0.reason, .0.detail)]
    Refused(Refusal),
    /// Merging the vetted fork failed (should not happen; answer 500).
    #[error("merge failed: {0}")]
    Merge(automerge::AutomergeError),
}

/// Bounds of one task document, the same on the device (which stops recording into a full
/// document) and on the server (which refuses what would pass them). Sync cost grows with
/// a document's history (design §3), and every scanner of the task downloads all of it.
pub mod limits {
    /// Scans in one document. Every device change must add a scan or a void and a void
    /// takes back one existing scan once, so device changes stay below twice this.
    pub const MAX_SCANS: usize = 10_000;
    /// Bytes of one scan or void record (a scan's raw barcode is at most
    /// [`crate::model::MAX_RAW_LEN`]; the other fields are short).
    pub const MAX_RECORD_BYTES: usize = 4_096;
}

/// Who is syncing: what the token and the device registration say.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The Automerge actor registered for the calling device.
    pub actor: &'a ActorId,
    /// The token's user id.
    pub user: &'a str,
    /// The registered device id the token was issued for.
    pub device: &'a str,
}

/// The id prefix a scan written by `actor` must carry: its hex and a dot.
pub fn scan_id_prefix(actor: &ActorId) -> String {
    format!("{actor}.")
}

/// What an accepted message added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Number of new changes merged.
    pub changes: usize,
    /// Ids of the scans added, in change order (input for the projection).
    pub new_scans: Vec<ScanId>,
    /// Ids of the scans voided.
    pub new_voids: Vec<ScanId>,
}

/// Vets and applies a device's sync message on the server.
///
/// `state` is the server's state for (this device, this document); `caller` names the
/// device's registered actor, the token's user and the device. The message is received
/// into a fork; every new change must be by the caller's actor, carry no payload besides
/// its operations (no message, no extra bytes, at least one operation), touch only
/// `scans`/`voids`, add (never overwrite or delete) one valid record per key, scans under
/// the actor's own id prefix, and name the caller's user and device; the document stays
/// within [`limits`]. Then the fork is merged and `state` advances; otherwise neither the
/// document nor `state` changes.
pub fn vet_and_apply(
    doc: &mut TaskDocument,
    state: &mut SyncState,
    msg: &[u8],
    caller: Caller<'_>,
) -> Result<Accepted, VetError> {
    let Caller {
        actor: device_actor,
        user,
        device,
    } = caller;
    let id_prefix = scan_id_prefix(device_actor);
    let message = decode_message(msg)?;
    let before = doc.doc.get_heads();
    let mut fork = doc.doc.fork();
    let mut st = state.0.clone();
    fork.sync()
        .receive_sync_message(&mut st, message)
        .map_err(|e| VetError::Malformed(SyncError::Apply(e)))?;
    let new = fork.get_changes(&before);
    if new.is_empty() {
        state.0 = st;
        return Ok(Accepted::default());
    }

    // Sections as they exist on the server; a device can never create them.
    let scans_id = doc.scans.as_ref().map(ToString::to_string);
    let voids_id = doc.voids.as_ref().map(ToString::to_string);
    let fork_scans = get_obj(&fork, &ROOT, K_SCANS);

    let mut acc = Accepted {
        changes: new.len(),
        ..Default::default()
    };
    let mut seen_scans = HashSet::new();
    let mut seen_voids = HashSet::new();
    // Counted once: the count walks the scans list, and a round brings hundreds of scans.
    let stored_scans = doc.scan_count();
    for change in &new {
        let hash = change.hash().to_string();
        let refuse = |reason, detail: String| {
            VetError::Refused(Refusal {
                reason,
                change: hash.clone(),
                detail,
            })
        };
        if change.actor_id() != device_actor {
            return Err(refuse(
                RefusalReason::ForeignActor,
                format!("change by actor {}", change.actor_id()),
            ));
        }
        if change.message().is_some_and(|m| !m.is_empty()) {
            return Err(refuse(
                RefusalReason::ChangePayload,
                "the change carries a commit message".to_owned(),
            ));
        }
        if !change.extra_bytes().is_empty() {
            return Err(refuse(
                RefusalReason::ChangePayload,
                format!(
                    "the change carries {} extra bytes",
                    change.extra_bytes().len()
                ),
            ));
        }
        if change.is_empty() {
            return Err(refuse(
                RefusalReason::ChangePayload,
                "the change has no operation".to_owned(),
            ));
        }
        for op in change.decode().operations {
            let obj = op.obj.to_string();
            let is_scans = scans_id.as_deref() == Some(obj.as_str());
            let is_voids = voids_id.as_deref() == Some(obj.as_str());
            if !is_scans && !is_voids {
                return Err(refuse(
                    RefusalReason::ServerSection,
                    format!("operation on object {obj}"),
                ));
            }
            let section = if is_scans { "scans" } else { "voids" };
            let rewritten = if is_scans {
                RefusalReason::ScanRewritten
            } else {
                RefusalReason::VoidRewritten
            };
            let key = match &op.key {
                Key::Map(k) if !op.insert => k.to_string(),
                _ => {
                    return Err(refuse(
                        RefusalReason::MalformedRecord,
                        format!("{section}: not a map key"),
                    ));
                }
            };
            let bytes = match &op.action {
                OpType::Put(ScalarValue::Bytes(b)) => b,
                OpType::Delete => {
                    return Err(refuse(rewritten, format!("{section}.{key} deleted")));
                }
                _ => {
                    return Err(refuse(
                        RefusalReason::MalformedRecord,
                        format!("{section}.{key}: not one bytes value"),
                    ));
                }
            };
            let exists = if is_scans {
                doc.has_scan_key(&key)
            } else {
                doc.has_void_key(&key)
            };
            let first = if is_scans {
                seen_scans.insert(key.clone())
            } else {
                seen_voids.insert(key.clone())
            };
            if !op.pred.is_empty() || exists || !first {
                return Err(refuse(rewritten, format!("{section}.{key} overwritten")));
            }
            if bytes.len() > limits::MAX_RECORD_BYTES {
                return Err(refuse(
                    RefusalReason::MalformedRecord,
                    format!(
                        "{section}.{key}: {} bytes, more than {}",
                        bytes.len(),
                        limits::MAX_RECORD_BYTES
                    ),
                ));
            }
            let id = ScanId::parse(&key).map_err(|e| {
                refuse(
                    RefusalReason::MalformedRecord,
                    format!("{section} key: {e}"),
                )
            })?;
            if is_scans {
                let scan = Scan::decode_record(id.clone(), bytes).map_err(|e| {
                    refuse(RefusalReason::MalformedRecord, format!("scans.{key}: {e}"))
                })?;
                // Voids are keyed by the scan they take back, which another device of the
                // same user may have made: only scans must carry the writer's prefix.
                if !key.starts_with(&id_prefix) {
                    return Err(refuse(
                        RefusalReason::ForeignScanId,
                        format!("scans.{key}: a scan id of this device starts with {id_prefix}"),
                    ));
                }
                if scan.user != user {
                    return Err(refuse(
                        RefusalReason::WrongUser,
                        format!("scans.{key} names another user"),
                    ));
                }
                if scan.device != device {
                    return Err(refuse(
                        RefusalReason::WrongDevice,
                        format!("scans.{key} names another device"),
                    ));
                }
                if stored_scans + acc.new_scans.len() >= limits::MAX_SCANS {
                    return Err(refuse(
                        RefusalReason::DocumentFull,
                        format!(
                            "the document holds {} scans, the most one document takes",
                            limits::MAX_SCANS
                        ),
                    ));
                }
                acc.new_scans.push(id);
            } else {
                let void = Void::decode_record(id.clone(), bytes).map_err(|e| {
                    refuse(RefusalReason::MalformedRecord, format!("voids.{key}: {e}"))
                })?;
                if void.user != user {
                    return Err(refuse(
                        RefusalReason::WrongUser,
                        format!("voids.{key} names another user"),
                    ));
                }
                if void.device != device {
                    return Err(refuse(
                        RefusalReason::WrongDevice,
                        format!("voids.{key} names another device"),
                    ));
                }
                // The voided scan may arrive in the same message: look in the fork.
                let scan_bytes = fork_scans
                    .as_ref()
                    .and_then(|s| {
                        automerge::ReadDoc::get(&fork, s, key.as_str())
                            .ok()
                            .flatten()
                    })
                    .and_then(|(v, _)| super::bytes_value(&v));
                let Some(scan_bytes) = scan_bytes else {
                    return Err(refuse(
                        RefusalReason::UnknownScan,
                        format!("voids.{key}: no such scan"),
                    ));
                };
                match Scan::record_user(&scan_bytes) {
                    Ok(u) if u == user => {}
                    _ => {
                        return Err(refuse(
                            RefusalReason::NotOwnScan,
                            format!("voids.{key}: scan by another user"),
                        ));
                    }
                }
                acc.new_voids.push(id);
            }
        }
    }
    doc.doc.merge(&mut fork).map_err(VetError::Merge)?;
    doc.refresh_sections();
    state.0 = st;
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{ScanResult, TaskDocument};
    use crate::testing::{header, server_actor};
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ReadDoc};

    const DEV: &[u8] = b"device-actor-0001";

    fn dev_actor() -> ActorId {
        ActorId::from(DEV)
    }

    /// A scan of the shared test helper, under the id space of the device's actor.
    fn scan(device: &str, user: &str, n: u64) -> Scan {
        let mut s = crate::testing::scan(device, user, n);
        s.id = ScanId::from_device_counter(&dev_actor().to_string(), n).unwrap();
        s
    }

    fn caller<'a>(actor: &'a ActorId, user: &'a str) -> Caller<'a> {
        Caller {
            actor,
            user,
            device: "dev",
        }
    }

    /// Runs a sync loop, the server side vetting everything the device sends.
    fn sync_vetted(
        server: &mut TaskDocument,
        s_state: &mut SyncState,
        device: &mut TaskDocument,
        d_state: &mut SyncState,
        user: &str,
    ) -> Result<Accepted, VetError> {
        let mut total = Accepted::default();
        for _ in 0..50 {
            let mut quiet = true;
            if let Some(m) = device.generate_sync_message(d_state) {
                let a = vet_and_apply(server, s_state, &m, caller(&dev_actor(), user))?;
                total.changes += a.changes;
                total.new_scans.extend(a.new_scans);
                total.new_voids.extend(a.new_voids);
                quiet = false;
            }
            if let Some(m) = server.generate_sync_message(s_state) {
                device.receive_sync_message(d_state, &m)?;
                quiet = false;
            }
            if quiet {
                break;
            }
        }
        Ok(total)
    }

    /// A server document with one scan by u1 and a device that holds it.
    fn setup() -> (TaskDocument, SyncState, TaskDocument, SyncState) {
        let mut server = TaskDocument::create(server_actor(), &header(), 1).unwrap();
        let mut device = TaskDocument::empty(dev_actor());
        let (mut ss, mut ds) = (SyncState::new(), SyncState::new());
        sync_vetted(&mut server, &mut ss, &mut device, &mut ds, "u1").unwrap();
        assert!(device.is_initialised());
        device.add_scan(&scan("dev", "u1", 1)).unwrap();
        let a = sync_vetted(&mut server, &mut ss, &mut device, &mut ds, "u1").unwrap();
        assert_eq!(a.new_scans, vec![scan("dev", "u1", 1).id]);
        (server, ss, device, ds)
    }

    fn expect_refusal(
        server: &mut TaskDocument,
        ss: &mut SyncState,
        device: &mut TaskDocument,
        ds: &mut SyncState,
        user: &str,
        reason: RefusalReason,
    ) {
        let heads = server.heads();
        let count = server.scan_count();
        let state = ss.encode();
        match sync_vetted(server, ss, device, ds, user) {
            Err(VetError::Refused(r)) => assert_eq!(r.reason, reason, "{r:?}"),
            other => panic!("expected refusal {reason}, got {other:?}"),
        }
        assert_eq!(server.heads(), heads, "nothing applied");
        assert_eq!(server.scan_count(), count);
        assert_eq!(ss.encode(), state, "sync state unchanged");
    }

    #[test]
    fn good_scans_and_voids_are_accepted() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        for n in 2..=5 {
            device.add_scan(&scan("dev", "u1", n)).unwrap();
        }
        device
            .void_scan(&Void {
                scan_id: scan("dev", "u1", 2).id,
                user: "u1".into(),
                device: "dev".into(),
                device_time_ms: 7,
            })
            .unwrap();
        let a = sync_vetted(&mut server, &mut ss, &mut device, &mut ds, "u1").unwrap();
        assert_eq!(a.new_scans.len(), 4);
        assert_eq!(a.new_voids, vec![scan("dev", "u1", 2).id]);
        assert_eq!(server.scan_count(), 5);
        assert_eq!(server.heads(), device.heads());
    }

    #[test]
    fn a_large_batch_of_scans_in_one_change_is_accepted() {
        // The device store applies large batches as a change it builds itself; the
        // server must see it as an ordinary change of the device.
        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans: Vec<_> = (2..300).map(|n| scan("dev", "u1", n)).collect();
        device.add_scans(&scans).unwrap();
        let a = sync_vetted(&mut server, &mut ss, &mut device, &mut ds, "u1").unwrap();
        assert_eq!(a.changes, 1);
        assert_eq!(a.new_scans.len(), 298);
        assert_eq!(server.scan_count(), 299);
        assert_eq!(server.heads(), device.heads());
    }

    #[test]
    fn forged_actor_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        device
            .doc
            .set_actor(ActorId::from(b"someone-else".as_slice()));
        device.add_scan(&scan("dev", "u1", 2)).unwrap();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ForeignActor,
        );
    }

    #[test]
    fn header_write_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let h = device.doc.get(ROOT, "header").unwrap().unwrap().1;
        device.doc.put(&h, "status", "closed").unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ServerSection,
        );
    }

    #[test]
    fn results_write_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let id = scan("dev", "u1", 1).id;
        device
            .put_result(
                &id,
                &ScanResult {
                    verification: Some(crate::doc::VerificationOutcome::Verified.into()),
                    ..Default::default()
                },
            )
            .unwrap();
        device.commit(5);
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ServerSection,
        );
    }

    #[test]
    fn root_write_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        device.doc.put_object(ROOT, "scans", ObjType::Map).unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ServerSection,
        );
    }

    #[test]
    fn wrong_user_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        device.add_scan(&scan("dev", "u2", 2)).unwrap();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::WrongUser,
        );
    }

    #[test]
    fn a_good_scan_with_a_bad_one_is_refused_whole() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        device.add_scan(&scan("dev", "u1", 2)).unwrap();
        device.add_scan(&scan("dev", "u2", 3)).unwrap();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::WrongUser,
        );
        assert!(!server.has_scan(&scan("dev", "u1", 2).id));
    }

    #[test]
    fn rewriting_or_deleting_a_scan_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let mut s = scan("dev", "u1", 1);
        s.device_time_ms += 1;
        let scans = device.scans.clone().unwrap();
        device
            .doc
            .put(
                &scans,
                s.id.as_str(),
                ScalarValue::Bytes(s.encode_record().unwrap()),
            )
            .unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ScanRewritten,
        );

        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans = device.scans.clone().unwrap();
        device
            .doc
            .delete(&scans, scan("dev", "u1", 1).id.as_str())
            .unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ScanRewritten,
        );
    }

    #[test]
    fn malformed_records_are_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans = device.scans.clone().unwrap();
        device
            .doc
            .put(&scans, "dev.9", ScalarValue::Bytes(vec![1, 2, 3]))
            .unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::MalformedRecord,
        );

        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans = device.scans.clone().unwrap();
        device
            .doc
            .put_object(&scans, "dev.9", ObjType::Map)
            .unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::MalformedRecord,
        );
    }

    #[test]
    fn voids_of_other_users_or_unknown_scans_are_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let voids = device.voids.clone().unwrap();
        let v = Void {
            scan_id: scan("dev", "u1", 1).id,
            user: "u2".into(),
            device: "dev".into(),
            device_time_ms: 1,
        };
        device
            .doc
            .put(
                &voids,
                v.scan_id.as_str(),
                ScalarValue::Bytes(v.encode_record().unwrap()),
            )
            .unwrap();
        device.doc.commit();
        // Token user u2: the void names u2 but the scan is u1's.
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u2",
            RefusalReason::NotOwnScan,
        );
        // Token user u1: the void names u2. The device's state thinks it sent the change
        // already, so start a fresh session as a reconnecting device would.
        let mut ds = SyncState::new();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::WrongUser,
        );

        let (mut server, mut ss, mut device, mut ds) = setup();
        let voids = device.voids.clone().unwrap();
        let v = Void {
            scan_id: ScanId::parse("nope.1").unwrap(),
            user: "u1".into(),
            device: "dev".into(),
            device_time_ms: 1,
        };
        device
            .doc
            .put(
                &voids,
                "nope.1",
                ScalarValue::Bytes(v.encode_record().unwrap()),
            )
            .unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::UnknownScan,
        );
    }

    #[test]
    fn garbage_message_is_malformed_and_applies_nothing() {
        let (mut server, mut ss, _device, _ds) = setup();
        let heads = server.heads();
        for garbage in [&b""[..], b"\x42\x00\x01", &[0xff; 64]] {
            let r = vet_and_apply(&mut server, &mut ss, garbage, caller(&dev_actor(), "u1"));
            assert!(matches!(r, Err(VetError::Malformed(_))), "{r:?}");
        }
        assert_eq!(server.heads(), heads);
    }

    #[test]
    fn refused_device_does_not_block_good_devices() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        device.add_scan(&scan("dev", "u2", 2)).unwrap();
        assert!(sync_vetted(&mut server, &mut ss, &mut device, &mut ds, "u1").is_err());
        // A clean device with its own actor and state still syncs.
        let actor = ActorId::from(b"device-actor-0002".as_slice());
        let mut good = TaskDocument::empty(actor.clone());
        let (mut ss2, mut ds2) = (SyncState::new(), SyncState::new());
        for _ in 0..10 {
            if let Some(m) = server.generate_sync_message(&mut ss2) {
                good.receive_sync_message(&mut ds2, &m).unwrap();
            }
            if let Some(m) = good.generate_sync_message(&mut ds2) {
                vet_and_apply(&mut server, &mut ss2, &m, caller(&actor, "u3")).unwrap();
            }
        }
        let mut second = crate::testing::scan("dev", "u3", 1);
        second.id = ScanId::from_device_counter(&actor.to_string(), 1).unwrap();
        good.add_scan(&second).unwrap();
        for _ in 0..10 {
            if let Some(m) = good.generate_sync_message(&mut ds2) {
                vet_and_apply(&mut server, &mut ss2, &m, caller(&actor, "u3")).unwrap();
            }
            if let Some(m) = server.generate_sync_message(&mut ss2) {
                good.receive_sync_message(&mut ds2, &m).unwrap();
            }
        }
        assert!(server.has_scan(&second.id));
        assert_eq!(server.scan_count(), 2);
    }

    #[test]
    fn sync_state_round_trips() {
        let (_server, ss, _device, _ds) = setup();
        let b = ss.encode();
        assert_eq!(SyncState::decode(&b).unwrap().encode(), b);
        assert!(SyncState::decode(b"garbage").is_err());
    }

    #[test]
    fn a_scan_outside_the_devices_id_space_is_refused() {
        // Squatting: another device's next key, or an id without any actor prefix.
        for id in [
            "0123456789abcdef.1",
            "dev.7",
            "6465766963652d6163746f722d3030303.1",
        ] {
            let (mut server, mut ss, mut device, mut ds) = setup();
            let mut s = scan("dev", "u1", 2);
            s.id = ScanId::parse(id).unwrap();
            device.add_scan(&s).unwrap();
            expect_refusal(
                &mut server,
                &mut ss,
                &mut device,
                &mut ds,
                "u1",
                RefusalReason::ForeignScanId,
            );
        }
    }

    #[test]
    fn a_scan_or_void_naming_another_device_is_refused() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let mut s = scan("dev", "u1", 2);
        s.device = "someone-elses-scanner".into();
        device.add_scan(&s).unwrap();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::WrongDevice,
        );

        let (mut server, mut ss, mut device, mut ds) = setup();
        device
            .void_scan(&Void {
                scan_id: scan("dev", "u1", 1).id,
                user: "u1".into(),
                device: "other".into(),
                device_time_ms: 7,
            })
            .unwrap();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::WrongDevice,
        );
    }

    #[test]
    fn payload_outside_the_sections_is_refused() {
        // A commit message on an otherwise good scan.
        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans = device.scans.clone().unwrap();
        let s = scan("dev", "u1", 2);
        device
            .doc
            .put(
                &scans,
                s.id.as_str(),
                ScalarValue::Bytes(s.encode_record().unwrap()),
            )
            .unwrap();
        device.doc.commit_with(
            automerge::transaction::CommitOptions::default().with_message("x".repeat(100_000)),
        );
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ChangePayload,
        );

        // An empty change.
        let (mut server, mut ss, mut device, mut ds) = setup();
        device
            .doc
            .empty_change(automerge::transaction::CommitOptions::default());
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::ChangePayload,
        );

        // A huge value under a scan key.
        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans = device.scans.clone().unwrap();
        let key = scan("dev", "u1", 2).id;
        device
            .doc
            .put(&scans, key.as_str(), ScalarValue::Bytes(vec![1; 1 << 20]))
            .unwrap();
        device.doc.commit();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::MalformedRecord,
        );
    }

    #[test]
    fn a_full_document_takes_no_more_scans() {
        let (mut server, mut ss, mut device, mut ds) = setup();
        let scans: Vec<_> = (2..=limits::MAX_SCANS as u64)
            .map(|n| scan("dev", "u1", n))
            .collect();
        device.add_scans(&scans).unwrap();
        let a = sync_vetted(&mut server, &mut ss, &mut device, &mut ds, "u1").unwrap();
        assert_eq!(a.new_scans.len(), limits::MAX_SCANS - 1);
        assert_eq!(server.scan_count(), limits::MAX_SCANS);
        device
            .add_scan(&scan("dev", "u1", limits::MAX_SCANS as u64 + 1))
            .unwrap();
        expect_refusal(
            &mut server,
            &mut ss,
            &mut device,
            &mut ds,
            "u1",
            RefusalReason::DocumentFull,
        );
    }
}
