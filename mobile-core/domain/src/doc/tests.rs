use automerge::ActorId;

use super::*;
use crate::codes::Code;
use crate::model::{Scan, Void};
use crate::rules::{Reason, Verdict};
use crate::testing::{header, scan, server_actor};

#[test]
fn header_expected_scans_voids_results_round_trip() {
    let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
    assert_eq!(d.header().unwrap(), header());
    assert_eq!(d.schema_version().unwrap(), SCHEMA_VERSION);
    let e = Expected {
        lines: vec![ExpectedLine {
            gtin: "09506000134352".parse().unwrap(),
            quantity: 12,
            lot: Some("LOT1".into()),
        }],
        units: vec![
            ExpectedUnit {
                id: "sscc:001234567890123457".into(),
                parent: None,
            },
            ExpectedUnit {
                id: "sgtin:09506000134352:S1".into(),
                parent: Some("sscc:001234567890123457".into()),
            },
        ],
    };
    d.set_expected(&e, 2).unwrap();
    let mut sorted = e.clone();
    sorted.units.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(d.expected().unwrap(), sorted, "units come back in id order");

    let s = scan("dev", "u1", 1);
    d.add_scan(&s).unwrap();
    assert!(matches!(d.add_scan(&s), Err(DocError::DuplicateScan(_))));
    assert_eq!(d.scan_count(), 1);
    assert_eq!(d.scan(&s.id).unwrap().unwrap(), s);

    let v = Void {
        scan_id: s.id.clone(),
        user: "u2".into(),
        device: "dev".into(),
        device_time_ms: 9,
    };
    assert!(matches!(d.void_scan(&v), Err(DocError::NotOwnScan(_))));
    let v = Void {
        user: "u1".into(),
        ..v
    };
    d.void_scan(&v).unwrap();
    assert!(matches!(d.void_scan(&v), Err(DocError::AlreadyVoided(_))));
    assert_eq!(d.void(&s.id).unwrap().unwrap(), v);
    assert_eq!(d.scan_count(), 1, "a void never deletes the scan");

    let r = ScanResult {
        verification: Some(VerificationOutcome::Verified.into()),
        projection: None,
        exceptions: vec![ExceptionKind::DoublePick.into()],
        verdict: Some(Verdict::Reject.into()),
        reason: Some(Reason::RecalledLot.into()),
    };
    d.put_result(&s.id, &r).unwrap();
    d.commit(3);
    assert_eq!(d.result(&s.id).unwrap().unwrap(), r);

    let bytes = d.save();
    let d2 = TaskDocument::load(&bytes, ActorId::random()).unwrap();
    assert_eq!(
        d2.scans()
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        vec![s]
    );
    assert_eq!(d2.voids().len(), 1);
    assert_eq!(d2.result(&scan("dev", "u1", 1).id).unwrap().unwrap(), r);
}

#[test]
fn update_result_writes_only_what_changed() {
    let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
    let id = scan("dev", "u1", 1).id;
    let projected = |current: &ScanResult| ScanResult {
        projection: Some(ProjectionOutcome::Projected.into()),
        ..current.clone()
    };
    // Nothing recorded and nothing wanted: no entry is created.
    assert!(!d.update_result(&id, |c| c.clone()).unwrap());
    assert_eq!(d.result(&id).unwrap(), None);

    assert!(d.update_result(&id, projected).unwrap());
    d.commit(2);
    let heads = d.heads();
    // The same outcome again writes nothing, so the next commit is empty.
    assert!(!d.update_result(&id, projected).unwrap());
    d.commit(3);
    assert_eq!(d.heads(), heads);

    // The closure sees the current outcome: a field it keeps survives a change.
    d.put_result(
        &id,
        &ScanResult {
            verification: Some(VerificationOutcome::Verified.into()),
            projection: Some(ProjectionOutcome::Projected.into()),
            exceptions: vec![],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        d.update_result(&id, |c| ScanResult {
            exceptions: vec![ExceptionKind::DoublePick.into()],
            ..c.clone()
        })
        .unwrap()
    );
    assert_eq!(
        d.result(&id).unwrap().unwrap(),
        ScanResult {
            verification: Some(VerificationOutcome::Verified.into()),
            projection: Some(ProjectionOutcome::Projected.into()),
            exceptions: vec![ExceptionKind::DoublePick.into()],
            ..Default::default()
        }
    );
    // A field set to nothing is removed.
    assert!(
        d.update_result(&id, |c| ScanResult {
            verification: None,
            ..c.clone()
        })
        .unwrap()
    );
    assert_eq!(d.result(&id).unwrap().unwrap().verification, None);
}

/// A server newer than this build may write codes this build has no variant for: they
/// read as unknown codes (not an error, not dropped) and survive a write of another field.
#[test]
fn result_codes_from_a_newer_server_are_kept() {
    let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
    let id = scan("dev", "u1", 1).id;
    let newer = ScanResult {
        verification: Some(Code::Unknown("escalated".into())),
        projection: Some(Code::Unknown("deferred".into())),
        exceptions: vec![
            Issue::Unknown("cold_chain_breach".into()),
            ExceptionKind::DoublePick.into(),
            Rejection::NotSerialised.into(),
        ],
        verdict: Some(Code::Unknown("hold".into())),
        reason: Some(Code::Unknown("temperature_excursion".into())),
    };
    d.put_result(&id, &newer).unwrap();
    d.commit(2);
    let loaded = TaskDocument::load(&d.save(), ActorId::random()).unwrap();
    let read = loaded.result(&id).unwrap().unwrap();
    assert_eq!(read, newer);
    assert_eq!(read.projection.as_ref().map(Code::as_str), Some("deferred"));
    assert_eq!(
        read.exceptions[2],
        Issue::Rejection(Rejection::NotSerialised)
    );
    // An older server writing only its own field leaves the newer codes as written.
    assert!(
        d.update_result(&id, |c| ScanResult {
            verdict: Some(Verdict::Accept.into()),
            ..c.clone()
        })
        .unwrap()
    );
    let after = d.result(&id).unwrap().unwrap();
    assert_eq!(after.verdict, Some(Code::Known(Verdict::Accept)));
    assert_eq!(after.reason, newer.reason);
    assert_eq!(after.exceptions, newer.exceptions);
}

/// The three tables of `results.exceptions` share no code, so every code reads back as
/// the variant it was written from.
#[test]
fn issue_codes_are_unambiguous() {
    let all: Vec<Issue> = ExceptionKind::ALL
        .iter()
        .map(|&k| Issue::from(k))
        .chain(Rejection::ALL.iter().map(|&r| Issue::from(r)))
        .chain(Reason::ALL.iter().map(|&r| Issue::Refused(r)))
        .collect();
    for issue in &all {
        assert_eq!(&Issue::read(issue.as_str()), issue);
    }
    let codes: std::collections::BTreeSet<&str> = all.iter().map(Issue::as_str).collect();
    assert_eq!(codes.len(), all.len(), "a code is used twice");
}

#[test]
fn invalid_scan_is_refused_and_nothing_kept() {
    let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
    let mut s = scan("dev", "u1", 1);
    s.user = String::new();
    assert!(d.add_scan(&s).is_err());
    let good = scan("dev", "u1", 2);
    assert!(d.add_scans(&[good.clone(), s]).is_err());
    assert_eq!(d.scan_count(), 0);
    d.add_scan(&good).unwrap();
    assert_eq!(d.scan_count(), 1);
}

/// A device copy of a fresh server document, writing as `actor`.
fn device_doc(actor: &[u8]) -> TaskDocument {
    let mut server = TaskDocument::create(server_actor(), &header(), 1).unwrap();
    TaskDocument::load(&server.save(), ActorId::from(actor)).unwrap()
}

fn append(d: &mut TaskDocument, scans: &[Scan], built: bool) -> Vec<u8> {
    let records: Vec<Vec<u8>> = scans.iter().map(|s| s.encode_record().unwrap()).collect();
    d.append_records_with(
        scans
            .iter()
            .map(|s| &s.id)
            .zip(records.iter().map(Vec::as_slice)),
        7,
        built,
    )
    .unwrap()
}

#[test]
fn built_change_is_the_change_a_transaction_makes() {
    // Same document, same actor, same scans: the built change must be byte for byte
    // the transaction's (same hash), before and after other local changes.
    let mut a = device_doc(b"dev-a");
    let mut b = device_doc(b"dev-a");
    let first: Vec<Scan> = (0..100).map(|n| scan("dev", "u1", n)).collect();
    let ca = append(&mut a, &first, false);
    let cb = append(&mut b, &first, true);
    assert_eq!(ca, cb);
    assert_eq!(a.heads(), b.heads());
    // A local transaction after a built change continues the actor's sequence.
    let v = Void {
        scan_id: first[3].id.clone(),
        user: "u1".into(),
        device: "dev".into(),
        device_time_ms: 9,
    };
    a.void_scan(&v).unwrap();
    b.void_scan(&v).unwrap();
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.last_local_change(), b.last_local_change());
    // And a built change after a local transaction.
    let second: Vec<Scan> = (100..300).map(|n| scan("dev", "u1", n)).collect();
    assert_eq!(
        append(&mut a, &second, false),
        append(&mut b, &second, true)
    );
    assert_eq!(b.scan_count(), 300);
    assert_eq!(b.scan(&second[5].id).unwrap().unwrap(), second[5]);
    // Another implementation sees the same document.
    let other = TaskDocument::load(&b.save(), ActorId::random()).unwrap();
    assert_eq!(other.scans().len(), 300);
    assert_eq!(other.voids().len(), 1);
}

#[test]
fn built_change_is_the_last_local_change() {
    // The actor's first change is a built one: the store logs `last_local_change`
    // after `add_scans`.
    let mut d = device_doc(b"dev-new");
    let scans: Vec<Scan> = (0..100).map(|n| scan("dev", "u1", n)).collect();
    let bytes = append(&mut d, &scans, true);
    assert_eq!(d.last_local_change(), Some(bytes));
    let more: Vec<Scan> = (100..200).map(|n| scan("dev", "u1", n)).collect();
    d.add_scans(&more).unwrap();
    let last = d.last_local_change().unwrap();
    let mut other = device_doc(b"dev-other");
    other.load_incremental(&d.save()).unwrap();
    assert_eq!(other.scan_count(), 200);
    assert!(last.len() > 100 * 20, "the whole batch is one change");
}

#[test]
fn built_change_after_a_sync_depends_on_every_head() {
    // Two devices' changes merged: the built change must depend on both heads.
    let mut a = device_doc(b"dev-a");
    let mut b = device_doc(b"dev-b");
    append(&mut a, &[scan("da", "u1", 1)], false);
    append(&mut b, &[scan("db", "u2", 1)], true);
    a.doc.merge(&mut b.doc).unwrap();
    assert_eq!(a.heads().len(), 2);
    let more: Vec<Scan> = (10..80).map(|n| scan("da", "u1", n)).collect();
    let bytes = append(&mut a, &more, true);
    assert_eq!(a.heads().len(), 1);
    assert_eq!(a.scan_count(), 72);
    // The change alone applies on top of b once b has a's first change.
    let mut c = device_doc(b"dev-c");
    c.doc.merge(&mut a.doc.fork()).unwrap();
    assert_eq!(c.scan_count(), 72);
    let mut d = device_doc(b"dev-d");
    d.doc.merge(&mut b.doc).unwrap();
    d.load_incremental(&bytes).unwrap();
    assert_eq!(d.scan_count(), 1, "missing dep: queued, not applied");
}

#[test]
fn add_scans_refuses_repeats_and_known_ids_in_a_large_batch() {
    let mut d = device_doc(b"dev-a");
    let scans: Vec<Scan> = (0..200).map(|n| scan("dev", "u1", n)).collect();
    d.add_scans(&scans).unwrap();
    assert_eq!(d.scan_count(), 200);
    let mut again: Vec<Scan> = (200..400).map(|n| scan("dev", "u1", n)).collect();
    again.push(scans[0].clone());
    assert!(matches!(
        d.add_scans(&again),
        Err(DocError::DuplicateScan(_))
    ));
    again.pop();
    again.push(again[0].clone());
    assert!(matches!(
        d.add_scans(&again),
        Err(DocError::DuplicateScan(_))
    ));
    assert_eq!(d.scan_count(), 200, "nothing of a refused batch is kept");
}

#[test]
fn empty_document_has_no_sections() {
    let mut d = TaskDocument::empty(ActorId::random());
    assert!(!d.is_initialised());
    assert!(matches!(
        d.add_scan(&scan("d", "u", 1)),
        Err(DocError::Missing(_))
    ));
    assert!(d.scans().is_empty());
}

/// An expected line whose GTIN is not exactly a GTIN-14 with a valid check digit is
/// refused when read, never padded nor passed on.
#[test]
fn expected_line_with_a_bad_gtin_is_refused() {
    use automerge::transaction::Transactable;

    let mut d = TaskDocument::create(server_actor(), &header(), 1).unwrap();
    let e = Expected {
        lines: vec![ExpectedLine {
            gtin: "09506000134352".parse().unwrap(),
            quantity: 1,
            lot: None,
        }],
        units: vec![],
    };
    d.set_expected(&e, 2).unwrap();
    for bad in ["09506000134353", "9506000134352", "0950600013435X"] {
        let lines = get_obj(&d.doc, &d.section(K_EXPECTED).unwrap(), "lines").unwrap();
        let line = match d.doc.get(&lines, 0).unwrap() {
            Some((automerge::Value::Object(automerge::ObjType::Map), id)) => id,
            other => panic!("{other:?}"),
        };
        d.doc.put(&line, "gtin", bad).unwrap();
        assert!(
            matches!(d.expected(), Err(DocError::Invalid { ref path, .. }) if path == "expected.lines[0].gtin"),
            "{bad}: {:?}",
            d.expected()
        );
    }
}
