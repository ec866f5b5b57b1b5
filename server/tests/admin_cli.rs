//! The real `swt` binary creating an organisation and its sites (GLN check digits
//! verified), and disabling and re-enabling a scanner, on both back-ends.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use sea_orm::EntityTrait;
use swt_server::db::entity::{device, site};
use swt_tests::{TestDb, process};

fn swt(args: &[&str], url: &str) -> Output {
    process::command(std::path::Path::new(env!("CARGO_BIN_EXE_swt")))
        .args(args)
        .args(["--database-url", url, "--log-level", "warn"])
        .output()
        .expect("run swt")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The last word of the line starting with `prefix` (the ids the commands print).
fn id_after(o: &Output, prefix: &str) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn org_site_and_device_commands() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let url = tdb.url().to_owned();

    let o = swt(
        &["site", "add", "--name", "DC", "--gln", "0614141000012"],
        &url,
    );
    assert!(!o.status.success(), "no organisation yet: {}", out(&o));
    assert!(out(&o).contains("swt org add"), "{}", out(&o));

    let o = swt(
        &[
            "org",
            "add",
            "--name",
            "Acme Logistics",
            "--gln",
            "0614141000013",
        ],
        &url,
    );
    assert!(!o.status.success(), "bad check digit accepted: {}", out(&o));
    assert!(out(&o).contains("GLN"), "{}", out(&o));
    let o = swt(
        &[
            "org",
            "add",
            "--name",
            "Acme Logistics",
            "--gln",
            "0614141000005",
        ],
        &url,
    );
    assert!(o.status.success(), "{}", out(&o));
    let org = id_after(&o, "added organisation");
    assert!(!org.is_empty(), "{}", out(&o));

    let o = swt(
        &[
            "site",
            "add",
            "--name",
            "Memphis DC",
            "--gln",
            "0614141000011",
        ],
        &url,
    );
    assert!(!o.status.success(), "bad check digit accepted: {}", out(&o));
    let o = swt(
        &[
            "site",
            "add",
            "--name",
            "Memphis DC",
            "--gln",
            "0614141000012",
            "--address",
            "1 Dock Rd",
            "--time-zone",
            "America/Chicago",
        ],
        &url,
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("time zone America/Chicago"), "{}", out(&o));
    let site_id = id_after(&o, "added site");
    let o = swt(
        &[
            "site",
            "add",
            "--name",
            "Nowhere",
            "--gln",
            "0614141000029",
            "--time-zone",
            "Memphis",
        ],
        &url,
    );
    assert!(!o.status.success(), "not an IANA zone: {}", out(&o));
    assert!(out(&o).contains("unknown time zone"), "{}", out(&o));
    // A site's zone can be changed later; a bad zone or an unknown site changes nothing.
    let o = swt(
        &["site", "set-time-zone", "0614141000012", "America/New_York"],
        &url,
    );
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("time zone America/New_York"),
        "{}",
        out(&o)
    );
    let o = swt(&["site", "set-time-zone", &site_id, "Memphis"], &url);
    assert!(!o.status.success(), "not an IANA zone: {}", out(&o));
    let o = swt(
        &["site", "set-time-zone", "0614141999998", "Europe/Berlin"],
        &url,
    );
    assert!(!o.status.success(), "no such site: {}", out(&o));
    assert!(out(&o).contains("not found"), "{}", out(&o));
    let o = swt(
        &["site", "add", "--name", "Again", "--gln", "0614141000012"],
        &url,
    );
    assert!(!o.status.success(), "a GLN names one site: {}", out(&o));

    let o = swt(
        &[
            "device",
            "register",
            "--site",
            "0614141000012",
            "--name",
            "Dock 1",
        ],
        &url,
    );
    assert!(o.status.success(), "{}", out(&o));
    let device_id = id_after(&o, "device id");
    let o = swt(&["device", "disable", &device_id], &url);
    assert!(o.status.success(), "{}", out(&o));

    rt.block_on(async {
        let db = sea_orm::Database::connect(&url).await.expect("connect");
        let s = site::Entity::find_by_id(site_id.as_str())
            .one(&db)
            .await
            .expect("site");
        let s = s.expect("site row");
        assert_eq!(
            (
                s.organisation_id.as_str(),
                s.name.as_str(),
                s.time_zone.as_str()
            ),
            (org.as_str(), "Memphis DC", "America/New_York")
        );
        let d = device::Entity::find_by_id(device_id.as_str())
            .one(&db)
            .await
            .expect("device");
        assert!(d.expect("device row").disabled);
        db.close().await.expect("close");
    });
    let o = swt(&["device", "enable", &device_id], &url);
    assert!(o.status.success(), "{}", out(&o));
    let o = swt(&["device", "enable", "no-such-device"], &url);
    assert!(!o.status.success());
    assert!(out(&o).contains("not found"), "{}", out(&o));
    rt.block_on(tdb.close()).expect("drop database");
}
