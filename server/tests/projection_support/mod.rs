//! Shared helpers of the projection and trace tests: an organisation with a site, and
//! task documents built with the real `doc` API.
#![allow(dead_code)]

use std::collections::BTreeMap;

use automerge::ActorId;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection};
use swt_domain::doc::{Expected, ExpectedUnit, Header, TaskDocument, TaskKind, TaskStatus};
use swt_domain::model::{Action, Feedback, Identifiers, Scan, ScanId};
use swt_server::db::entity::{organisation, site};

pub const GLN: &str = "4098765000010";
pub const UNIT_GTIN: &str = "04012345111118";
pub const CASE_GTIN: &str = "14012345111115";
/// Inbound pallet from the manufacturer.
pub const PALLET: &str = "040123450000000122";
/// Our outbound SSCCs.
pub const OUT1: &str = "040987650000000027";
pub const OUT2: &str = "040987650000000034";
/// 2026-03-10T08:00:00Z.
pub const T0: u64 = 1_773_129_600_000;

/// Creates an organisation with one site.
pub async fn org_with_site(db: &DatabaseConnection, org: &str, site_id: &str, gln: &str) {
    let now = chrono::Utc::now();
    organisation::ActiveModel {
        id: Set(org.to_owned()),
        name: Set(format!("{org} Ltd")),
        gln: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("organisation");
    site::ActiveModel {
        id: Set(site_id.to_owned()),
        organisation_id: Set(org.to_owned()),
        name: Set("Main DC".to_owned()),
        gln: Set(gln.to_owned()),
        address: Set(None),
        time_zone: Set("UTC".to_owned()),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .expect("site");
}

/// Our organisation's party GLN (primer §5: PGLN 4098765.00000).
pub const PARTY_GLN: &str = "4098765000003";
/// The manufacturer's party GLN, issuer of its ASN.
pub const SUPPLIER_GLN: &str = "4012345000009";
/// The customer's party GLN, issuer of its purchase order.
pub const CUSTOMER_GLN: &str = "4055555000001";

/// Sets an organisation's party GLN.
pub async fn set_party_gln(db: &DatabaseConnection, org: &str, gln: &str) {
    organisation::ActiveModel {
        id: Set(org.to_owned()),
        gln: Set(Some(gln.to_owned())),
        ..Default::default()
    }
    .update(db)
    .await
    .expect("party GLN");
}

/// Sets a site's IANA time zone.
pub async fn set_time_zone(db: &DatabaseConnection, site_id: &str, zone: &str) {
    site::ActiveModel {
        id: Set(site_id.to_owned()),
        time_zone: Set(zone.to_owned()),
        ..Default::default()
    }
    .update(db)
    .await
    .expect("site time zone");
}

/// A new task document of `kind` at `site` with header references.
pub fn document(kind: TaskKind, site: &str, refs: &[(&str, &str)]) -> TaskDocument {
    let header = Header {
        kind,
        site: site.to_owned(),
        refs: refs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        status: TaskStatus::Open,
    };
    TaskDocument::create(ActorId::from(b"server-test".as_slice()), &header, 0).expect("doc")
}

/// The manufacturer's hierarchy: pallet → 2 cases → 2 packs each.
pub fn inbound_expected() -> Expected {
    let mut units = vec![ExpectedUnit {
        id: format!("sscc:{PALLET}"),
        parent: None,
    }];
    for (case, packs) in [("C1", ["SN1", "SN2"]), ("C2", ["SN3", "SN4"])] {
        units.push(ExpectedUnit {
            id: format!("sgtin:{CASE_GTIN}:{case}"),
            parent: Some(format!("sscc:{PALLET}")),
        });
        for p in packs {
            units.push(ExpectedUnit {
                id: format!("sgtin:{UNIT_GTIN}:{p}"),
                parent: Some(format!("sgtin:{CASE_GTIN}:{case}")),
            });
        }
    }
    Expected {
        lines: Vec::new(),
        units,
    }
}

/// What a scan names.
pub enum Item<'a> {
    /// A unit pack (GTIN, serial) with lot L2024A, expiry 2027-09-30.
    Pack(&'a str),
    /// A case (case GTIN, serial).
    Case(&'a str),
    /// A pallet / outbound SSCC.
    Sscc(&'a str),
}

/// One scan by `user` on `device`.
#[allow(clippy::too_many_arguments)]
pub fn scan(
    id: &str,
    item: Item<'_>,
    action: Action,
    location: Option<&str>,
    parent: Option<&str>,
    t: u64,
    user: &str,
    device: &str,
) -> Scan {
    let (ids, raw) = match item {
        Item::Pack(sn) => (
            Identifiers {
                gtin: Some(UNIT_GTIN.parse().expect("GTIN")),
                serial: Some(sn.to_owned()),
                lot: Some("L2024A".to_owned()),
                expiry: Some("270930".to_owned()),
                sscc: None,
            },
            format!("01{UNIT_GTIN}21{sn}\x1d10L2024A\x1d17270930"),
        ),
        Item::Case(sn) => (
            Identifiers {
                gtin: Some(CASE_GTIN.parse().expect("GTIN")),
                serial: Some(sn.to_owned()),
                lot: Some("L2024A".to_owned()),
                expiry: None,
                sscc: None,
            },
            format!("01{CASE_GTIN}21{sn}"),
        ),
        Item::Sscc(s) => (
            Identifiers {
                sscc: Some(s.parse().expect("SSCC")),
                ..Default::default()
            },
            format!("00{s}"),
        ),
    };
    Scan {
        id: ScanId::parse(id).expect("scan id"),
        raw: raw.into_bytes(),
        ids,
        action,
        user: user.to_owned(),
        device: device.to_owned(),
        location: location.map(str::to_owned),
        device_time_ms: t,
        feedback: Feedback::Ok,
        parent: parent.map(str::to_owned),
    }
}

/// Minutes after T0.
pub fn at(min: u64) -> u64 {
    T0 + min * 60_000
}

/// The receiving document of the inbound pallet: receive, unpack both cases, store them.
pub fn receiving_doc(site: &str) -> TaskDocument {
    let mut d = document(
        TaskKind::Receiving,
        site,
        &[
            ("po", "PO-2026-118"),
            ("asn", "DEL-5531"),
            ("supplier_gln", SUPPLIER_GLN),
        ],
    );
    d.set_expected(&inbound_expected(), 0).expect("expected");
    let pallet = format!("sscc:{PALLET}");
    for s in [
        scan(
            "rcv.1",
            Item::Sscc(PALLET),
            Action::Receive,
            Some("DOCK-01"),
            None,
            at(0),
            "u-recv",
            "dev-1",
        ),
        scan(
            "rcv.2",
            Item::Case("C1"),
            Action::Unpack,
            Some("DOCK-01"),
            Some(&pallet),
            at(5),
            "u-recv",
            "dev-1",
        ),
        scan(
            "rcv.3",
            Item::Case("C2"),
            Action::Unpack,
            Some("DOCK-01"),
            Some(&pallet),
            at(6),
            "u-recv",
            "dev-1",
        ),
        scan(
            "rcv.4",
            Item::Case("C1"),
            Action::Store,
            Some("BIN-A0103"),
            None,
            at(20),
            "u-recv",
            "dev-1",
        ),
        scan(
            "rcv.5",
            Item::Case("C2"),
            Action::Store,
            Some("BIN-A0104"),
            None,
            at(21),
            "u-recv",
            "dev-1",
        ),
    ] {
        d.add_scan(&s).expect("scan");
    }
    d
}
