//! Importing manufacturer serials into a real database (SQLite, or PostgreSQL with
//! SWT_TEST_DATABASE_URL): CSV (good lines, bad lines with their line numbers, strict
//! atomicity, upsert, date forms, repeated keys) and EPCIS (commissioning in every
//! accepted spelling, decommissioning, malformed documents change nothing).

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use serde_json::Value;
use swt_server::db::entity::{organisation, verification_lot, verification_serial};
use swt_server::serials::SerialsError;
use swt_server::serials::epcis_import;
use swt_server::serials::import_csv::{self, CsvOptions, CsvReport};
use swt_tests::{TestDb, test_config};

const GTIN: &str = "00312345678906";

async fn setup() -> anyhow::Result<(TestDb, DatabaseConnection)> {
    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    for org in ["org-a", "org-b"] {
        organisation::ActiveModel {
            id: Set(org.to_owned()),
            name: Set(format!("{org} Ltd")),
            gln: Set(None),
            created_at: Set(chrono::Utc::now()),
        }
        .insert(&db)
        .await?;
    }
    Ok((tdb, db))
}

fn opts(org: &str, strict: bool) -> CsvOptions {
    CsvOptions {
        org: org.to_owned(),
        source: "csv:test.csv".to_owned(),
        strict,
        // Tiny, so that the tests go through several commits.
        commit_every: 2,
    }
}

async fn import(
    db: &DatabaseConnection,
    csv: &str,
    opts: &CsvOptions,
) -> Result<CsvReport, SerialsError> {
    let mut last = 0;
    let report = import_csv::import(db, std::io::Cursor::new(csv.to_owned()), opts, |b| {
        last = b;
    })
    .await?;
    assert!(last > 0, "progress reported");
    Ok(report)
}

async fn serial(db: &DatabaseConnection, org: &str, serial: &str) -> verification_serial::Model {
    verification_serial::Entity::find_by_id((org.to_owned(), GTIN.to_owned(), serial.to_owned()))
        .one(db)
        .await
        .expect("query")
        .unwrap_or_else(|| panic!("serial {serial} of {org}"))
}

async fn count(db: &DatabaseConnection, org: &str) -> u64 {
    verification_serial::Entity::find()
        .filter(verification_serial::Column::OrganisationId.eq(org))
        .count(db)
        .await
        .expect("count")
}

#[tokio::test]
async fn csv_import_checks_every_line_and_upserts() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;

    // Good lines in every accepted form: GTIN-13 padded to 14, ISO and YYMMDD dates,
    // day 00, a quoted serial holding a comma (GS1 character set 82 allows it), status.
    let good = "gtin,serial,lot,expiry,status\n\
                0312345678906,S0001,LOT1,2027-01-31,\n\
                00312345678906,S0002,LOT1,270131,active\n\
                00312345678906,\"S,0003\",LOT2,270200,suspect\n\
                00312345678906,S0004,LOT2,2028-02-29,\n";
    let r = import(&db, good, &opts("org-a", false)).await?;
    assert_eq!(
        (r.lines, r.imported, r.bad, r.new_lots),
        (4, 4, 0, 2),
        "{r:?}"
    );
    let s1 = serial(&db, "org-a", "S0001").await;
    assert_eq!(
        (s1.lot.as_str(), s1.expiry.as_str(), s1.status.as_str()),
        ("LOT1", "270131", "active")
    );
    assert_eq!(s1.source, "csv:test.csv");
    assert_eq!(serial(&db, "org-a", "S,0003").await.status, "suspect");
    assert_eq!(serial(&db, "org-a", "S,0003").await.expiry, "270200");
    assert_eq!(serial(&db, "org-a", "S0004").await.expiry, "280229");
    let lots = verification_lot::Entity::find()
        .filter(verification_lot::Column::OrganisationId.eq("org-a"))
        .all(&db)
        .await?;
    assert_eq!(lots.len(), 2);
    assert!(lots.iter().all(|l| !l.recalled && l.gtin == GTIN));

    // Upsert: a new lot and expiry replace the old; a line without status leaves the
    // suspect mark alone; a line with one sets it; a repeated key: the last line wins.
    let again = "serial,gtin,lot,expiry\n\
                 S,0003,00312345678906,LOT9,290101\n";
    // (A 5-field line under a 4-column header is refused, not guessed at.)
    let r = import(&db, again, &opts("org-a", false)).await?;
    assert_eq!((r.imported, r.bad), (0, 1));
    assert_eq!(r.bad_lines[0].line, 2);
    assert!(
        r.bad_lines[0].reason.contains("fields"),
        "{:?}",
        r.bad_lines
    );
    let again = "serial,gtin,lot,expiry\n\
                 \"S,0003\",00312345678906,LOT9,290101\n\
                 S0001,00312345678906,LOT1,270131\n\
                 S0001,00312345678906,LOT3,270331\n";
    let r = import(&db, again, &opts("org-a", false)).await?;
    assert_eq!((r.imported, r.bad, r.new_lots), (3, 0, 2), "{r:?}");
    let s3 = serial(&db, "org-a", "S,0003").await;
    assert_eq!(
        (s3.lot.as_str(), s3.expiry.as_str(), s3.status.as_str()),
        ("LOT9", "290101", "suspect")
    );
    assert_eq!(serial(&db, "org-a", "S0001").await.lot, "LOT3");
    let r = import(
        &db,
        "gtin,serial,lot,expiry,status\n00312345678906,S,0003,LOT9,290101,active\n",
        &opts("org-a", false),
    )
    .await?;
    assert_eq!(r.bad, 1, "an unquoted comma shifts the columns");
    let r = import(
        &db,
        "gtin,serial,lot,expiry,status\n00312345678906,\"S,0003\",LOT9,290101,active\n",
        &opts("org-a", false),
    )
    .await?;
    assert_eq!(r.imported, 1);
    assert_eq!(serial(&db, "org-a", "S,0003").await.status, "active");
    assert_eq!(count(&db, "org-a").await, 4);

    // Bad lines: each reported with its line number and reason, the good ones imported.
    let mixed = "gtin,serial,lot,expiry\n\
                 00312345678906,B0001,LOT5,270131\n\
                 00312345678907,B0002,LOT5,270131\n\
                 00312345678906,B0003_IS_FAR_TOO_LONG_X,LOT5,270131\n\
                 00312345678906,B0004,LOT5,2027-02-30\n\
                 00312345678906,B0005,,270131\n\
                 00312345678906,B0006,LOT5\n\
                 00312345678906,B0007,LOT5,310131\n";
    let r = import(&db, mixed, &opts("org-a", false)).await?;
    assert_eq!((r.lines, r.imported, r.bad), (7, 2, 5), "{r:?}");
    let lines: Vec<u64> = r.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    for (b, word) in r
        .bad_lines
        .iter()
        .zip(["check digit", "serial", "expiry", "lot", "fields"])
    {
        assert!(b.reason.contains(word), "line {}: {}", b.line, b.reason);
    }
    assert_eq!(count(&db, "org-a").await, 6);

    // Strict: the same file imports nothing, in another organisation too.
    let r = import(&db, mixed, &opts("org-b", true)).await?;
    assert_eq!((r.imported, r.bad), (0, 5));
    assert_eq!(count(&db, "org-b").await, 0);
    let lots_b = verification_lot::Entity::find()
        .filter(verification_lot::Column::OrganisationId.eq("org-b"))
        .count(&db)
        .await?;
    assert_eq!(lots_b, 0, "no lot rows either");
    // … and a clean file imports in strict mode.
    let r = import(&db, good, &opts("org-b", true)).await?;
    assert_eq!((r.imported, r.bad), (4, 0));
    assert_eq!(count(&db, "org-b").await, 4);
    assert_eq!(count(&db, "org-a").await, 6, "organisations are separate");

    // A file that is not what we expect is an error, not a report.
    for bad in [
        "",
        "00312345678906,S1,L1,270131\n",
        "gtin,serial,lot,expiry,colour\n",
    ] {
        let err = import_csv::import(
            &db,
            std::io::Cursor::new(bad.to_owned()),
            &opts("org-a", false),
            |_| {},
        )
        .await
        .expect_err("refused");
        assert!(err.to_string().contains("gtin,serial,lot,expiry"), "{err}");
    }

    tdb.close().await?;
    Ok(())
}

fn example() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/serials/commissioning.jsonld"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("read example")).expect("JSON")
}

#[test]
fn example_document_is_valid_epcis() {
    let schema_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/epcis/epcis-json-schema.json"
    );
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("schema")).expect("JSON");
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the bundled schema compiles");
    let doc = example();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[tokio::test]
async fn epcis_commissioning_and_decommissioning() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let doc = example();

    // A malformed version (a bad check digit in the last event) applies nothing, not
    // even the valid events before it.
    let mut broken = doc.clone();
    broken["epcisBody"]["eventList"][4]["epcList"][1] =
        Value::from("https://id.gs1.org/01/04012345111117/21/X1");
    let err = epcis_import::import(&db, "org-a", &broken, "broken.jsonld")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("event 5"), "{err}");
    assert_eq!(count_all(&db, "org-a").await, 0);

    let r = epcis_import::import(&db, "org-a", &doc, "commissioning.jsonld").await?;
    assert_eq!(r.events, 5);
    assert_eq!(r.commissioning_events, 3);
    assert_eq!(r.decommissioning_events, 1);
    assert_eq!(r.skipped_events, 1, "shipping");
    assert_eq!(r.commissioned, 4);
    assert_eq!((r.decommissioned, r.decommissioned_unknown), (1, 1));
    assert_eq!(r.skipped_identifiers, 1, "the pallet's SSCC");
    assert_eq!(r.new_lots, 2);

    let get = |s: &'static str| {
        let db = db.clone();
        async move {
            verification_serial::Entity::find_by_id((
                "org-a".to_owned(),
                "04012345111118".to_owned(),
                s.to_owned(),
            ))
            .one(&db)
            .await
            .expect("query")
            .unwrap_or_else(|| panic!("{s}"))
        }
    };
    let a = get("SN0001A").await;
    assert_eq!(
        (a.lot.as_str(), a.expiry.as_str(), a.status.as_str()),
        ("L2024A", "270930", "active")
    );
    assert_eq!(
        a.source,
        "epcis:urn:uuid:6f1c2d3e-4a5b-4c6d-8e7f-000000000001"
    );
    assert_eq!(get("SN0003C").await.lot, "L2024A", "Digital Link form");
    let d = get("SN0004D").await;
    assert_eq!((d.lot.as_str(), d.expiry.as_str()), ("L2025B", "280131"));
    assert_eq!(d.source, "epcis:commissioning.jsonld#2");
    assert_eq!(get("SN0002B").await.status, "decommissioned");
    assert_eq!(
        count_all(&db, "org-a").await,
        4,
        "the unknown serial stays unknown"
    );

    // Importing the document again changes nothing that matters: commissioning does
    // not bring the decommissioned serial back.
    epcis_import::import(&db, "org-a", &doc, "commissioning.jsonld").await?;
    assert_eq!(get("SN0002B").await.status, "decommissioned");
    assert_eq!(count_all(&db, "org-a").await, 4);
    assert_eq!(count_all(&db, "org-b").await, 0);

    // swt's own worked example of inbound manufacturer data imports too (packs and the
    // case; the pallet is an SSCC).
    let worked = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/epcis/swt-worked-examples/00-inbound-from-manufacturer.jsonld"
    );
    let worked: Value = serde_json::from_str(&std::fs::read_to_string(worked)?)?;
    let r = epcis_import::import(&db, "org-b", &worked, "00.jsonld").await?;
    assert!(r.commissioned >= 2, "{r:?}");
    assert!(r.skipped_events >= 1, "{r:?}");

    tdb.close().await?;
    Ok(())
}

async fn count_all(db: &DatabaseConnection, org: &str) -> u64 {
    verification_serial::Entity::find()
        .filter(verification_serial::Column::OrganisationId.eq(org))
        .count(db)
        .await
        .expect("count")
}
