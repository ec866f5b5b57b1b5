//! The real `swt` binary for manufacturer data: `import serials` (exit status, bad lines
//! on stderr, --strict), `import epcis`, `serials`, `partner` and `policy`, the
//! organisation chosen when only one exists, and `swt demo`'s partner key.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use swt_server::db::entity::{
    organisation, verification_lot, verification_partner, verification_policy, verification_serial,
};
use swt_server::verification::partners::key_hash;
use swt_tests::TestDb;
use swt_tests::process;

fn swt(args: &[&str], url: &str) -> Output {
    process::command(std::path::Path::new(env!("CARGO_BIN_EXE_swt")))
        .args(args)
        .args(["--database-url", url, "--log-level", "warn"])
        .output()
        .expect("run swt")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn add_org(db: &DatabaseConnection, id: &str) {
    organisation::ActiveModel {
        id: Set(id.to_owned()),
        name: Set(format!("{id} Ltd")),
        gln: Set(None),
        created_at: Set(chrono::Utc::now()),
    }
    .insert(db)
    .await
    .expect("organisation");
}

async fn serials(db: &DatabaseConnection) -> u64 {
    verification_serial::Entity::find()
        .count(db)
        .await
        .expect("count")
}

#[test]
fn import_partner_and_policy_commands() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let url = tdb.url().to_owned();
    let db = rt
        .block_on(swt_server::app::open_database(&swt_tests::test_config(
            &url,
        )))
        .expect("database");
    rt.block_on(add_org(&db, "org-a"));
    let dir = tempfile::tempdir().expect("tempdir");

    // CSV: good file → exit 0 and a summary; the organisation is the only one.
    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "gtin,serial,lot,expiry\n0312345678906,C0001,LOTC,2027-03-31\n00312345678906,C0002,LOTC,270331\n",
    )
    .expect("write");
    let out = swt(&["import", "serials", good.to_str().expect("utf8")], &url);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("2 serials imported"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rt.block_on(serials(&db)), 2);
    let row = rt
        .block_on(
            verification_serial::Entity::find_by_id((
                "org-a".to_owned(),
                "00312345678906".to_owned(),
                "C0001".to_owned(),
            ))
            .one(&db),
        )
        .expect("query")
        .expect("imported");
    assert_eq!(row.source, "csv:good.csv");

    // Bad lines: listed on stderr with line numbers, exit 1; --strict imports nothing.
    let mixed = dir.path().join("mixed.csv");
    std::fs::write(
        &mixed,
        "gtin,serial,lot,expiry\n00312345678906,C0003,LOTC,270331\n00312345678906,C0004,LOTC,273131\n",
    )
    .expect("write");
    let out = swt(
        &[
            "import",
            "serials",
            "--strict",
            mixed.to_str().expect("utf8"),
        ],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 3: expiry"), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing was imported"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rt.block_on(serials(&db)), 2);
    let out = swt(
        &[
            "import",
            "serials",
            mixed.to_str().expect("utf8"),
            "--source",
            "manual",
        ],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("1 serials imported"),
        "{}",
        stdout(&out)
    );
    assert_eq!(rt.block_on(serials(&db)), 3);

    // EPCIS file.
    let epcis = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/serials/commissioning.jsonld"
    );
    let out = swt(&["import", "epcis", epcis], &url);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("4 serials"), "{}", stdout(&out));
    assert_eq!(rt.block_on(serials(&db)), 7);
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "{").expect("write");
    let out = swt(&["import", "epcis", not_json.to_str().expect("utf8")], &url);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("swt: error:"), "{}", stderr(&out));

    // Serial status, recall, expiry extension.
    let out = swt(
        &[
            "serials",
            "status",
            "--gtin",
            "0312345678906",
            "--serial",
            "C0001",
            "--status",
            "suspect",
        ],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("suspect"));
    let out = swt(
        &[
            "serials",
            "recall",
            "--gtin",
            "00312345678906",
            "--lot",
            "LOTC",
        ],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("recalled; 3 serials"),
        "{}",
        stdout(&out)
    );
    let out = swt(
        &[
            "serials",
            "extend-expiry",
            "--gtin",
            "00312345678906",
            "--lot",
            "LOTC",
            "--expiry",
            "2028-03-31",
        ],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lot = rt
        .block_on(
            verification_lot::Entity::find_by_id((
                "org-a".to_owned(),
                "00312345678906".to_owned(),
                "LOTC".to_owned(),
            ))
            .one(&db),
        )
        .expect("query")
        .expect("lot");
    assert!(lot.recalled);
    assert_eq!(lot.expiry_extended_to.as_deref(), Some("280331"));
    let out = swt(
        &[
            "serials",
            "show",
            "--gtin",
            "00312345678906",
            "--serial",
            "C0001",
        ],
        &url,
    );
    assert!(
        stdout(&out).contains("expiry extended to 280331"),
        "{}",
        stdout(&out)
    );

    // Partners: the key is printed once, only its hash is stored.
    let out = swt(
        &[
            "partner",
            "add",
            "--gln",
            "0860000000024",
            "--name",
            "Lakeside Pharmacy",
        ],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("key "))
        .unwrap_or_else(|| panic!("a key line in {text}"))
        .trim()
        .to_owned();
    assert!(key.starts_with("swtp_") && key.len() == 48, "{key}");
    let stored = rt
        .block_on(verification_partner::Entity::find().all(&db))
        .expect("partners");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].key_hash, key_hash(&key));
    let out = swt(
        &["partner", "add", "--gln", "0860000000025", "--name", "Typo"],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("check digit"), "{}", stderr(&out));
    let out = swt(
        &[
            "partner",
            "add",
            "--gln",
            "0860000000024",
            "--name",
            "Twice",
        ],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    let out = swt(&["partner", "suspend", "0860000000024"], &url);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = swt(&["partner", "list"], &url);
    assert!(
        stdout(&out).contains("0860000000024  suspended  Lakeside Pharmacy"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("swtp_"), "the key is never listed");

    // Policies: unset answers default to verified.
    let out = swt(
        &[
            "policy",
            "set",
            "--prefix",
            "0312345",
            "--manufacturer",
            "Acme Pharma",
            "--recalled",
            "manufacturer_policy",
        ],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let policy = rt
        .block_on(verification_policy::Entity::find().one(&db))
        .expect("query")
        .expect("policy");
    assert_eq!(
        (
            policy.on_recalled.as_str(),
            policy.on_expired.as_str(),
            policy.on_suspect.as_str()
        ),
        ("manufacturer_policy", "verified", "verified")
    );
    let out = swt(&["policy", "list"], &url);
    assert!(stdout(&out).contains("Acme Pharma"), "{}", stdout(&out));
    let out = swt(
        &[
            "policy",
            "set",
            "--prefix",
            "0312345",
            "--manufacturer",
            "A",
            "--expired",
            "sometimes",
        ],
        &url,
    );
    assert_eq!(out.status.code(), Some(2), "clap refuses the value");

    // With two organisations, --org is needed.
    rt.block_on(add_org(&db, "org-b"));
    let out = swt(&["policy", "list"], &url);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--org"), "{}", stderr(&out));
    let out = swt(&["policy", "list", "--org", "org-b"], &url);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "");
    let partners_b = rt
        .block_on(
            verification_partner::Entity::find()
                .filter(verification_partner::Column::OrganisationId.eq("org-b"))
                .count(&db),
        )
        .expect("count");
    assert_eq!(partners_b, 0);

    rt.block_on(db.close()).expect("close");
    rt.block_on(tdb.close()).expect("drop test database");
}

#[test]
fn demo_prints_the_partner_key_and_seeds_manufacturer_data_once() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..2 {
        let running = process::start(
            std::path::Path::new(env!("CARGO_BIN_EXE_swt")),
            &[
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                tdb.url(),
            ],
            dir.path(),
        )
        .expect("start swt demo");
        // Ready (and its signal handler installed) before it is told to stop.
        let ready = rt
            .block_on(swt_tests::http::get(format!(
                "http://{}/readyz",
                running.addr
            )))
            .expect("readyz")
            .status();
        assert_eq!(ready, 200);
        let (exit, out, _) = process::signal_and_wait(running, "-TERM").expect("stop");
        assert!(exit.success());
        assert!(
            out.contains(&format!("key {}", swt_server::demo::PARTNER_KEY)),
            "{out}"
        );
        assert!(
            out.contains("AMX2311R") && out.contains("recalled"),
            "{out}"
        );
    }
    let db = rt
        .block_on(swt_server::app::open_database(&swt_tests::test_config(
            tdb.url(),
        )))
        .expect("database");
    assert_eq!(rt.block_on(serials(&db)), 200);
    let lots = rt
        .block_on(verification_lot::Entity::find().all(&db))
        .expect("lots");
    assert_eq!(lots.len(), 3);
    assert_eq!(lots.iter().filter(|l| l.recalled).count(), 1);
    assert_eq!(
        lots.iter()
            .filter(|l| l.expiry_extended_to.is_some())
            .count(),
        1
    );
    let partners = rt
        .block_on(verification_partner::Entity::find().all(&db))
        .expect("partners");
    assert_eq!(partners.len(), 1);
    assert_eq!(
        partners[0].key_hash,
        key_hash(swt_server::demo::PARTNER_KEY)
    );
    assert_eq!(
        rt.block_on(verification_policy::Entity::find().count(&db))
            .expect("count"),
        1
    );
    let odd = rt
        .block_on(
            verification_serial::Entity::find()
                .filter(verification_serial::Column::Status.ne("active"))
                .count(&db),
        )
        .expect("count");
    assert_eq!(odd, 3, "one suspect, one illegitimate, one decommissioned");
    rt.block_on(db.close()).expect("close");
    rt.block_on(tdb.close()).expect("drop test database");
}

#[test]
fn import_products_reports_bad_lines_and_feeds_the_reference_data() {
    use swt_server::db::entity::product;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let url = tdb.url().to_owned();
    let db = rt
        .block_on(swt_server::app::open_database(&swt_tests::test_config(
            &url,
        )))
        .expect("database");
    rt.block_on(add_org(&db, "org-p"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("products.csv");
    std::fs::write(
        &file,
        "gtin,name,ndc,serialized\n09506000134352,Aspirin 100 mg,0002-3227-30,true\n09506000134353,Bad digit,,\n4150123456782,Ibuprofen 400 mg,,no\n",
    )
    .expect("write");
    let count = || {
        rt.block_on(product::Entity::find().count(&db))
            .expect("count")
    };

    // --strict: the bad line is named, nothing is loaded.
    let path = file.to_str().expect("utf8");
    let out = swt(&["import", "products", "--strict", path], &url);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 3: GTIN"), "{}", stderr(&out));
    assert_eq!(count(), 0);

    // Without: the good lines are loaded, the exit status still says not everything was.
    let out = swt(&["import", "products", path], &url);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("2 products loaded"),
        "{}",
        stdout(&out)
    );
    assert_eq!(count(), 2);
    let ibu = rt
        .block_on(
            product::Entity::find()
                .filter(product::Column::Gtin.eq("04150123456782"))
                .one(&db),
        )
        .expect("query")
        .expect("loaded as GTIN-14");
    assert!(!ibu.serialized);

    // The scanners' reference data has both products.
    use swt_server::db::entity::reference_item;
    let entries = rt
        .block_on(
            reference_item::Entity::find()
                .filter(reference_item::Column::OrganisationId.eq("org-p"))
                .filter(reference_item::Column::Kind.eq("product"))
                .filter(reference_item::Column::Removed.eq(false))
                .count(&db),
        )
        .expect("count");
    assert_eq!(entries, 2);
    let version = rt
        .block_on(swt_server::reference::current_version(&db, "org-p"))
        .expect("version");
    assert!(version >= 1);
    rt.block_on(db.close()).expect("close");
    rt.block_on(tdb.close()).expect("drop test database");
}
