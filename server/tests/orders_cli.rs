//! The real `swt` binary for ERP intake: `integration add|list|revoke` (the key printed
//! once, a revoked account listed as such) and `import orders` (bad lines on stderr with
//! their numbers and exit status 1, --strict importing nothing, a file imported again
//! changing nothing), on the run's back-end.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use swt_server::db::entity::{erp_order, integration_account, task_document};
use swt_server::demo;
use swt_tests::TestDb;
use swt_tests::process;

fn swt(args: &[&str], url: &str) -> Output {
    process::command(std::path::Path::new(env!("CARGO_BIN_EXE_swt")))
        .args(args)
        .args(["--database-url", url, "--log-level", "warn"])
        .output()
        .expect("run swt")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn tasks(db: &DatabaseConnection) -> (u64, u64) {
    (
        task_document::Entity::find()
            .count(db)
            .await
            .expect("count"),
        erp_order::Entity::find().count(db).await.expect("count"),
    )
}

#[test]
fn integration_accounts_and_order_files_from_the_command_line() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let url = tdb.url().to_owned();
    let db = rt
        .block_on(swt_server::app::open_database(&swt_tests::test_config(
            &url,
        )))
        .expect("database");
    rt.block_on(demo::seed(&db)).expect("demo seed");

    // An account: its key printed once, stored only hashed; revoked, it is listed so.
    let out = swt(&["integration", "add", "--name", "SAP"], &url);
    let (so, se) = text(&out);
    assert!(out.status.success(), "{so}{se}");
    let key = so
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("the key is printed")
        .to_owned();
    assert!(key.starts_with("swti_"), "{so}");
    let stored = rt
        .block_on(integration_account::Entity::find().all(&db))
        .expect("accounts");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].key_hash, key, "never the key itself");
    let id = stored[0].id.clone();
    let out = swt(&["integration", "revoke", &id], &url);
    assert!(out.status.success(), "{:?}", text(&out));
    let out = swt(&["integration", "list"], &url);
    let (so, _) = text(&out);
    assert!(so.contains(&id) && so.contains("revoked"), "{so}");
    // A person cannot be given the role.
    let out = swt(
        &["user", "add", "--username", "erp", "--role", "integration"],
        &url,
    );
    let (so, se) = text(&out);
    assert!(
        !out.status.success() && se.contains("not a person's role"),
        "{so}{se}"
    );

    let gtins: Vec<&str> = demo::product_gtins().take(2).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("orders.csv");
    std::fs::write(
        &file,
        format!(
            "kind,order_ref,site_gln,partner_gln,gtin,quantity,lot\n\
             picking,SO-1,0614141000012,0860000000017,{g0},3,\n\
             picking,SO-1,0614141000012,0860000000017,{g1},1,L1\n\
             picking,SO-2,0614141000012,0860000000017,00312345678906,1,\n\
             receiving,PO-3,0614141000012,0860000000017,{g0},0,\n",
            g0 = gtins[0],
            g1 = gtins[1]
        ),
    )
    .expect("write");
    let path = file.to_str().expect("utf8");

    // --strict: the bad lines by number, exit 1, nothing imported.
    let out = swt(&["import", "orders", "--strict", path], &url);
    let (so, se) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{so}{se}");
    assert!(
        se.contains("line 4: GTIN 00312345678906 is not in your product master"),
        "{se}"
    );
    assert!(se.contains("line 5: quantity must be at least 1"), "{se}");
    assert!(so.contains("nothing was imported"), "{so}");
    assert_eq!(rt.block_on(tasks(&db)), (0, 0));

    // Without: the good order is imported, the bad ones reported; again, nothing changes.
    let out = swt(&["import", "orders", path], &url);
    let (so, se) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{so}{se}");
    assert!(
        so.contains("3 orders: 1 created, 0 updated, 0 unchanged, 2 not imported"),
        "{so}"
    );
    assert_eq!(rt.block_on(tasks(&db)), (1, 1));
    let out = swt(&["import", "orders", path], &url);
    let (so, _) = text(&out);
    assert!(so.contains("0 created, 0 updated, 1 unchanged"), "{so}");
    assert_eq!(rt.block_on(tasks(&db)), (1, 1));

    rt.block_on(db.close()).expect("close");
    rt.block_on(tdb.close()).expect("drop test database");
}
