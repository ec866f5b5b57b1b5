//! Demo data: a believable pharma 3PL, seeded idempotently (fixed ids, insert-if-absent),
//! so `swt demo` can run any number of times on the same database.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};

use crate::auth::{Role, password};
use crate::db::entity::{app_user, device, organisation, product, site};

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

/// What the demo seed created, to print.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Rows inserted now (0 on a second run).
    pub inserted: usize,
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
        ),
        (
            SITE_IDS[1],
            "Louisville Returns Centre",
            "0614141000029",
            "1200 Grade Ln, Louisville, KY 40213, US",
        ),
    ];
    for (id, name, gln, address) in sites {
        if site::Entity::find_by_id(id).one(db).await?.is_none() {
            site::Entity::insert(site::ActiveModel {
                id: Set(id.to_owned()),
                organisation_id: Set(ORG_ID.to_owned()),
                name: Set(name.to_owned()),
                gln: Set(gln.to_owned()),
                address: Set(Some(address.to_owned())),
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
            Role::Manager | Role::Admin => None,
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
            created_at: Set(now),
        })
        .exec(db)
        .await?;
        inserted += 1;
    }

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
        })
        .exec(db)
        .await?;
        inserted += 1;
    }

    Ok(SeedReport { inserted })
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
            let parsed = swt_core::gs1::Gtin::parse(gtin);
            assert!(parsed.is_ok_and(|g| g.as_str() == gtin), "{gtin}");
        }
        for gln in ["0614141000012", "0614141000029"] {
            assert!(swt_core::gs1::Gln::parse(gln).is_ok(), "{gln}");
        }
        for (_, _, _, _, ndc) in PRODUCTS {
            if let Some(ndc) = ndc {
                assert_eq!(ndc.len(), 10);
            }
        }
    }
}
