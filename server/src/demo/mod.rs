//! Demo data: a believable pharma 3PL, seeded idempotently (fixed ids, insert-if-absent),
//! so `swt demo` can run any number of times on the same database.

mod activity;
mod scanner;

pub use activity::{ActivityError, ActivitySummary, summary};

use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};

use crate::auth::{Role, password};
use crate::db::entity::{app_user, device, organisation, product, site, verification_lot};
use crate::serials::store::{self, SerialRow};
use crate::serials::{SerialStatus, SerialsError};
use crate::verification::decide::PolicyAction;
use crate::verification::partners::{self, PolicyInput};

/// The demo organisation's id.
pub const ORG_ID: &str = "0193f5a0-0000-7000-8000-000000000001";
/// The demo organisation's party GLN (its LMS responder and requester identity).
pub const ORG_GLN: &str = "0614141000005";
/// The demo sites' ids: the distribution centre and the returns centre.
pub const SITE_IDS: [&str; 2] = [
    "0193f5a0-0000-7000-8000-000000000101",
    "0193f5a0-0000-7000-8000-000000000102",
];

/// A demo login, printed for the person trying swt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoLogin {
    /// The role it holds.
    pub role: Role,
    /// The user name.
    pub username: &'static str,
    /// The password (demo only).
    pub password: &'static str,
}

/// The demo users, one per role.
pub const LOGINS: [DemoLogin; 4] = [
    DemoLogin {
        role: Role::Picker,
        username: "picker",
        password: "demo-picker-2026",
    },
    DemoLogin {
        role: Role::ReturnsClerk,
        username: "returns",
        password: "demo-returns-2026",
    },
    DemoLogin {
        role: Role::Manager,
        username: "manager",
        password: "demo-manager-2026",
    },
    DemoLogin {
        role: Role::Admin,
        username: "admin",
        password: "demo-admin-2026",
    },
];

/// (GTIN-14, name, strength, pack size, NDC). US products carry their NDC inside the GTIN
/// (indicator 0, "03" prefix); the EU ones use a GS1 Germany test prefix.
const PRODUCTS: [(&str, &str, &str, &str, Option<&str>); 12] = [
    (
        "00361500231012",
        "Amoxicillin capsules",
        "500 mg",
        "100 capsules",
        Some("6150023101"),
    ),
    (
        "00304094888026",
        "Heparin sodium injection",
        "5,000 USP units/mL",
        "25 x 1 mL vials",
        Some("0409488802"),
    ),
    (
        "00368180513063",
        "Lisinopril tablets",
        "10 mg",
        "90 tablets",
        Some("6818051306"),
    ),
    (
        "00300937180562",
        "Atorvastatin calcium tablets",
        "20 mg",
        "90 tablets",
        Some("0093718056"),
    ),
    (
        "00343598257105",
        "Ondansetron orally disintegrating tablets",
        "4 mg",
        "30 tablets",
        Some("4359825710"),
    ),
    (
        "00360505257935",
        "Metformin hydrochloride extended-release tablets",
        "500 mg",
        "100 tablets",
        Some("6050525793"),
    ),
    (
        "04012345000016",
        "Ibuprofen film-coated tablets",
        "400 mg",
        "50 tablets",
        None,
    ),
    (
        "04012345000023",
        "Pantoprazole gastro-resistant tablets",
        "40 mg",
        "28 tablets",
        None,
    ),
    (
        "04012345000030",
        "Enoxaparin sodium pre-filled syringes",
        "40 mg/0.4 mL",
        "10 syringes",
        None,
    ),
    (
        "04012345000047",
        "Salbutamol pressurised inhalation",
        "100 micrograms/dose",
        "200 doses",
        None,
    ),
    (
        "04012345000054",
        "Insulin glargine pre-filled pen",
        "100 units/mL",
        "5 x 3 mL pens",
        None,
    ),
    (
        "04012345000061",
        "Levothyroxine sodium tablets",
        "50 micrograms",
        "100 tablets",
        None,
    ),
];

/// Demo scanners: (id, site index, name, actor id). Fixed actor ids are fine for a demo;
/// real devices get random ones from `swt device register`.
pub const DEVICES: [(&str, usize, &str, &str); 3] = [
    (
        "0193f5a0-0000-7000-8000-000000000401",
        0,
        "Memphis scanner 1",
        "5d7e0000000000000000000000000401",
    ),
    (
        "0193f5a0-0000-7000-8000-000000000402",
        0,
        "Memphis scanner 2",
        "5d7e0000000000000000000000000402",
    ),
    (
        "0193f5a0-0000-7000-8000-000000000403",
        1,
        "Louisville returns scanner",
        "5d7e0000000000000000000000000403",
    ),
];

/// The demo trading partner: a pharmacy that sends us verification requests for packs it
/// wants to return. Its key is fixed so the demo can be tried from a script; a real
/// partner's key comes from `swt partner add`.
pub const PARTNER_GLN: &str = "0860000000017";
/// The demo partner's name.
pub const PARTNER_NAME: &str = "Riverbend Community Pharmacy (demo)";
/// The demo partner's API key (demo only: anyone reading this source knows it).
pub const PARTNER_KEY: &str = "swtp_ZGVtby1wYXJ0bmVyLWtleS1ub3Qtc2VjcmV0LTIwMjY";

/// The demo manufacturer policy: the GS1 company prefix of the amoxicillin's labeler.
pub const POLICY_PREFIX: &str = "0361500";

/// A demo manufacturer lot and the serials held of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoLot {
    /// GTIN-14.
    pub gtin: &'static str,
    /// Lot.
    pub lot: &'static str,
    /// Printed expiry, `YYMMDD`.
    pub expiry: &'static str,
    /// First serial (serials are consecutive numbers).
    pub first_serial: u32,
    /// How many serials.
    pub count: u32,
    /// Recalled by the manufacturer.
    pub recalled: bool,
    /// FDA expiry extension, `YYMMDD`.
    pub extended_to: Option<&'static str>,
}

/// Demo manufacturer lots: 200 serials of two demo products.
pub const LOTS: [DemoLot; 3] = [
    // Amoxicillin, a current lot: the ordinary case.
    DemoLot {
        gtin: "00361500231012",
        lot: "AMX2406A",
        expiry: "280331",
        first_serial: 1_000_001,
        count: 80,
        recalled: false,
        extended_to: None,
    },
    // Amoxicillin, an older lot the manufacturer recalled.
    DemoLot {
        gtin: "00361500231012",
        lot: "AMX2311R",
        expiry: "270930",
        first_serial: 1_000_081,
        count: 60,
        recalled: true,
        extended_to: None,
    },
    // Heparin, printed expiry passed, extended by FDA.
    DemoLot {
        gtin: "00304094888026",
        lot: "HEP2405",
        expiry: "261031",
        first_serial: 2_000_001,
        count: 60,
        recalled: false,
        extended_to: Some("270430"),
    },
];

/// Demo serials whose status is not `active`: (GTIN-14, serial, status).
pub const SERIAL_STATUSES: [(&str, &str, SerialStatus); 3] = [
    ("00361500231012", "1000007", SerialStatus::Suspect),
    ("00361500231012", "1000013", SerialStatus::Illegitimate),
    ("00304094888026", "2000005", SerialStatus::Decommissioned),
];

/// What the demo seed created, to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Rows inserted now (0 on a second run).
    pub inserted: usize,
    /// Warehouse tasks created now (0 on a second run).
    pub tasks_created: usize,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A database error.
    #[error("seeding demo data: {0}")]
    Db(#[from] DbErr),
    /// Hashing a demo password failed.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// Writing the demo manufacturer data failed.
    #[error("seeding demo manufacturer data: {0}")]
    Serials(#[from] SerialsError),
    /// Writing the demo trading partner or policy failed.
    #[error("seeding the demo trading partner: {0}")]
    Partners(#[from] crate::verification::partners::PartnerError),
    /// Seeding the warehouse activity failed.
    #[error("seeding demo warehouse activity: {0}")]
    Activity(#[from] ActivityError),
}

fn demo_id(n: u32) -> String {
    format!("0193f5a0-0000-7000-8000-{n:012}")
}

/// Seeds the demo organisation, sites, users and products where they are missing.
pub async fn seed(db: &DatabaseConnection) -> Result<SeedReport, SeedError> {
    let now = Utc::now();
    let mut inserted = 0;

    if organisation::Entity::find_by_id(ORG_ID)
        .one(db)
        .await?
        .is_none()
    {
        organisation::Entity::insert(organisation::ActiveModel {
            id: Set(ORG_ID.to_owned()),
            name: Set("Northbridge Pharma Logistics".to_owned()),
            gln: Set(Some(ORG_GLN.to_owned())),
            created_at: Set(now),
        })
        .exec(db)
        .await?;
        inserted += 1;
    }

    let sites = [
        (
            SITE_IDS[0],
            "Memphis Distribution Centre",
            "0614141000012",
            "4200 Airways Blvd, Memphis, TN 38116, US",
            "America/Chicago",
        ),
        (
            SITE_IDS[1],
            "Louisville Returns Centre",
            "0614141000029",
            "1200 Grade Ln, Louisville, KY 40213, US",
            "America/Kentucky/Louisville",
        ),
    ];
    for (id, name, gln, address, zone) in sites {
        if site::Entity::find_by_id(id).one(db).await?.is_none() {
            site::Entity::insert(site::ActiveModel {
                id: Set(id.to_owned()),
                organisation_id: Set(ORG_ID.to_owned()),
                name: Set(name.to_owned()),
                gln: Set(gln.to_owned()),
                address: Set(Some(address.to_owned())),
                time_zone: Set(zone.to_owned()),
                created_at: Set(now),
            })
            .exec(db)
            .await?;
            inserted += 1;
        }
    }

    for (n, login) in (1u32..).zip(LOGINS.iter()) {
        let id = demo_id(200 + n);
        if app_user::Entity::find_by_id(id.as_str())
            .one(db)
            .await?
            .is_some()
        {
            continue;
        }
        let site_id = match login.role {
            Role::ReturnsClerk => Some(SITE_IDS[1]),
            Role::Picker => Some(SITE_IDS[0]),
            Role::Manager | Role::Admin | Role::Integration => None,
        };
        app_user::Entity::insert(app_user::ActiveModel {
            id: Set(id),
            organisation_id: Set(ORG_ID.to_owned()),
            site_id: Set(site_id.map(str::to_owned)),
            username: Set(login.username.to_owned()),
            display_name: Set(format!("Demo {}", login.role.as_str().replace('_', " "))),
            role: Set(login.role.as_str().to_owned()),
            password_hash: Set(password::hash(login.password)?),
            disabled: Set(false),
            created_at: Set(now),
        })
        .exec(db)
        .await?;
        inserted += 1;
    }

    for (n, (gtin, name, strength, pack, ndc)) in (1u32..).zip(PRODUCTS.iter()) {
        let id = demo_id(300 + n);
        if product::Entity::find_by_id(id.as_str())
            .one(db)
            .await?
            .is_some()
        {
            continue;
        }
        product::Entity::insert(product::ActiveModel {
            id: Set(id),
            organisation_id: Set(ORG_ID.to_owned()),
            gtin: Set((*gtin).to_owned()),
            name: Set((*name).to_owned()),
            strength: Set(Some((*strength).to_owned())),
            pack_size: Set(Some((*pack).to_owned())),
            ndc: Set(ndc.map(str::to_owned)),
            serialized: Set(true),
            created_at: Set(now),
        })
        .exec(db)
        .await?;
        inserted += 1;
    }
    // The scanners' product master (a no-op when the entries are already current).
    let gtins: Vec<String> = PRODUCTS.iter().map(|p| p.0.to_owned()).collect();
    crate::reference::touched(db, ORG_ID, crate::reference::Touched::Products(&gtins)).await?;

    for (id, site_index, name, actor) in DEVICES {
        if device::Entity::find_by_id(id).one(db).await?.is_some() {
            continue;
        }
        device::Entity::insert(device::ActiveModel {
            id: Set(id.to_owned()),
            organisation_id: Set(ORG_ID.to_owned()),
            site_id: Set(SITE_IDS[site_index].to_owned()),
            name: Set(name.to_owned()),
            actor_id: Set(actor.to_owned()),
            disabled: Set(false),
            registered_at: Set(now),
            unsent_writes: Set(None),
            unsent_reported_at: Set(None),
        })
        .exec(db)
        .await?;
        inserted += 1;
    }

    inserted += seed_manufacturer_data(db).await?;
    seed_reference(db).await?;

    Ok(SeedReport {
        inserted,
        tasks_created: 0,
    })
}

/// What `swt demo` seeds: the operator ([`seed`]) and three weeks of its warehouse's
/// work (tasks, scans, stock, exceptions, returns), each only where it is missing.
/// Tests that only need the operator call [`seed`], which is much quicker.
pub async fn seed_with_activity(db: &DatabaseConnection) -> Result<SeedReport, SeedError> {
    let mut report = seed(db).await?;
    report.tasks_created = activity::seed(db).await?;
    Ok(report)
}

/// The scanners' reference data for what the seed wrote around the usual writers
/// (recalled lots, serial statuses), and the Memphis site's expiry policy: packs within
/// 180 days of expiry are flagged, as many US distributors require for outbound stock.
/// Recomputing entries is a no-op when they are current; a policy a manager set since
/// is kept.
async fn seed_reference(db: &DatabaseConnection) -> Result<(), SeedError> {
    use crate::reference::{self, ReferenceError, Touched};
    let lots: Vec<(String, String)> = LOTS
        .iter()
        .map(|l| (l.gtin.to_owned(), l.lot.to_owned()))
        .collect();
    reference::touched(db, ORG_ID, Touched::Lots(&lots)).await?;
    let serials: Vec<(String, String)> = SERIAL_STATUSES
        .iter()
        .map(|(g, s, _)| ((*g).to_owned(), (*s).to_owned()))
        .collect();
    reference::touched(db, ORG_ID, Touched::Serials(&serials)).await?;
    let policy = swt_domain::model::ExpiryPolicy {
        min_remaining_days: 180,
        reject_expired: false,
    };
    match reference::set_policy_unless_set(db, ORG_ID, SITE_IDS[0], &policy).await {
        Ok(_) => Ok(()),
        Err(ReferenceError::Db(e)) => Err(e.into()),
        Err(e) => Err(SeedError::Serials(SerialsError::Invalid(e.to_string()))),
    }
}

/// Manufacturer serials, lots, a trading partner and a policy for returns verification.
/// Only what is missing is written: a status or recall changed since stays changed.
async fn seed_manufacturer_data(db: &DatabaseConnection) -> Result<usize, SeedError> {
    let now = crate::serials::now_ms();
    let mut inserted = 0;
    for DemoLot {
        gtin,
        lot,
        expiry,
        first_serial,
        count,
        recalled,
        extended_to,
    } in LOTS
    {
        let rows = (first_serial..first_serial + count)
            .map(|n| {
                let serial = n.to_string();
                let status = SERIAL_STATUSES
                    .iter()
                    .find(|(g, s, _)| *g == gtin && *s == serial)
                    .map_or(SerialStatus::Active, |(_, _, st)| *st);
                SerialRow {
                    gtin: gtin.to_owned(),
                    serial,
                    lot: lot.to_owned(),
                    expiry: expiry.to_owned(),
                    status: Some(status),
                }
            })
            .collect();
        let new = store::insert_new_serials(db, ORG_ID, rows, "demo", now).await?;
        inserted += usize::try_from(new).unwrap_or(0);
        let key = [(gtin.to_owned(), lot.to_owned())];
        if store::ensure_lots(db, ORG_ID, &key, now).await? > 0 {
            inserted += 1;
            verification_lot::Entity::update(verification_lot::ActiveModel {
                organisation_id: Set(ORG_ID.to_owned()),
                gtin: Set(gtin.to_owned()),
                lot: Set(lot.to_owned()),
                recalled: Set(recalled),
                expiry_extended_to: Set(extended_to.map(str::to_owned)),
                ..Default::default()
            })
            .exec(db)
            .await?;
        }
    }

    let gln = partners::parse_gln(PARTNER_GLN)?;
    match partners::add_partner_with_key(db, ORG_ID, &gln, PARTNER_NAME, PARTNER_KEY).await {
        Ok(_) => inserted += 1,
        // Already there (possibly suspended by the person trying the demo): leave it.
        Err(partners::PartnerError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }

    let has_policy = partners::list_policies(db, ORG_ID)
        .await?
        .iter()
        .any(|p| p.gtin_prefix == POLICY_PREFIX);
    if !has_policy {
        partners::set_policy(
            db,
            ORG_ID,
            &PolicyInput {
                gtin_prefix: POLICY_PREFIX.to_owned(),
                manufacturer: "Meridian Generics (demo)".to_owned(),
                on_recalled: PolicyAction::ManufacturerPolicy,
                on_expired: PolicyAction::Verified,
                on_suspect: PolicyAction::NotForRedistribution,
                disclose_mismatch: true,
            },
        )
        .await?;
        inserted += 1;
    }
    Ok(inserted)
}

/// The demo products' GTINs, for tests and the simulator.
pub fn product_gtins() -> impl Iterator<Item = &'static str> {
    PRODUCTS.iter().map(|p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_identifiers_are_valid() {
        for gtin in product_gtins() {
            let parsed = swt_domain::gs1::Gtin::parse(gtin);
            assert!(parsed.is_ok_and(|g| g.as_str() == gtin), "{gtin}");
        }
        for DemoLot {
            gtin, lot, expiry, ..
        } in LOTS
        {
            let g = swt_domain::gs1::Gtin::parse(gtin).expect("demo GTIN");
            assert!(crate::serials::check_lot(&g, lot).is_ok(), "{lot}");
            assert!(crate::serials::expiry_date(expiry).is_some(), "{expiry}");
            assert!(
                product_gtins().any(|p| p == gtin),
                "{gtin} is a demo product"
            );
            assert!(
                gtin.get(1..).is_some_and(|g| g.starts_with(POLICY_PREFIX))
                    || gtin != "00361500231012"
            );
        }
        assert!(PARTNER_KEY.starts_with(crate::verification::partners::KEY_PREFIX));
        assert_eq!(
            PARTNER_KEY.len(),
            5 + 43,
            "32 bytes, base64url without padding"
        );
        for gln in ["0614141000012", "0614141000029", PARTNER_GLN] {
            assert!(swt_domain::gs1::Gln::parse(gln).is_ok(), "{gln}");
        }
        for (_, _, _, _, ndc) in PRODUCTS {
            if let Some(ndc) = ndc {
                assert_eq!(ndc.len(), 10);
            }
        }
    }
}
