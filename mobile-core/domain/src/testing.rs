//! Fixtures for tests and benchmarks of this crate and the crates above it (enabled by the
//! `testing` feature; never part of a product build).

use std::collections::BTreeMap;

use automerge::ActorId;

use crate::doc::{Header, TaskKind, TaskStatus};
use crate::model::{Action, Feedback, Identifiers, Scan, ScanId};

/// A picking task header at `site-1` for order SO-42.
pub fn header() -> Header {
    Header {
        kind: TaskKind::Picking,
        site: "site-1".into(),
        refs: BTreeMap::from([("order".to_string(), "SO-42".to_string())]),
        status: TaskStatus::Open,
    }
}

/// Scan number `n` of a device: a valid pack DataMatrix with serial `SER<n>`.
pub fn scan(device: &str, user: &str, n: u64) -> Scan {
    let serial = format!("SER{n:010}");
    let raw = format!("0109506000134352{}{serial}\u{1d}17261231{}LOT1", "21", "10");
    Scan {
        id: ScanId::from_device_counter(device, n).unwrap(),
        raw: raw.into_bytes(),
        ids: Identifiers {
            gtin: Some("09506000134352".into()),
            serial: Some(serial),
            lot: Some("LOT1".into()),
            expiry: Some("261231".into()),
            sscc: None,
        },
        action: Action::Pick,
        user: user.into(),
        device: device.into(),
        location: None,
        device_time_ms: 1_764_000_000_000 + n,
        feedback: Feedback::Ok,
        parent: None,
    }
}

/// The actor the server writes with in these fixtures.
pub fn server_actor() -> ActorId {
    ActorId::from(b"server-actor-0001".as_slice())
}
