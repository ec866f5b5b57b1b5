//! Two `swt serve` instances on one database, scanners syncing the same task document
//! through both at once: no update is lost and every scan is projected exactly once.

use serde_json::json;
use swt_server::demo;
use swt_tests::api::{self, Scanner};
use swt_tests::{TestDb, TestServer, projected, test_config};

const GTIN: &str = "00304094888026";
const SCANNERS: usize = 4;
const SCANS_EACH: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_one_database_lose_no_update() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let a = TestServer::start(test_config(tdb.url())).await?;
    let b = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&a.db).await?;
    let admin = api::login(&a.base_url, "admin", demo::LOGINS[3].password).await?;
    let task = api::create_task(
        &a.base_url,
        &admin,
        &json!({"kind": "picking", "site": "0614141000012", "refs": {"order": "SO-CONC"}}),
    )
    .await?;
    let mut devices = Vec::new();
    for i in 0..SCANNERS {
        devices.push(
            api::register_device(&a.base_url, &admin, "0614141000012", &format!("conc-{i}"))
                .await?,
        );
    }

    let mut threads = Vec::new();
    for (i, device) in devices.into_iter().enumerate() {
        let (base_a, base_b, task) = (a.base_url.clone(), b.base_url.clone(), task.clone());
        threads.push(tokio::task::spawn_blocking(
            move || -> anyhow::Result<()> {
                let mut s =
                    Scanner::sign_in(&base_a, "picker", demo::LOGINS[0].password, &device, None)?;
                s.sync()?;
                for round in 0..SCANS_EACH / 10 {
                    for k in 0..10 {
                        let scan = s.pack_scan(GTIN, &format!("C{i}R{round}K{k}"), "LC", "300101");
                        s.store.record_scan(&task, &scan)?;
                    }
                    // Alternate servers so both merge the same document at the same time.
                    let base = if (round + i) % 2 == 0 {
                        &base_a
                    } else {
                        &base_b
                    };
                    s.client =
                        swt_core::sync::Client::new(base, std::time::Duration::from_secs(30));
                    let report = s.sync()?;
                    anyhow::ensure!(
                        report.refused.is_empty() && report.failed.is_empty(),
                        "{report:?}"
                    );
                }
                // Converge: a final sync pulls whatever the others added meanwhile.
                let report = s.sync()?;
                anyhow::ensure!(report.in_sync.contains(&task), "{report:?}");
                Ok(())
            },
        ));
    }
    for t in threads {
        t.await??;
    }

    let total = (SCANNERS * SCANS_EACH) as u64;
    let (_, detail) = api::get_json(&b.base_url, &admin, &format!("/api/v1/tasks/{task}")).await?;
    assert_eq!(detail["scan_count"], total, "{detail}");
    let (scans, events) = projected::wait_for(&a.db, &task, total).await?;
    assert_eq!(scans, total, "each scan projected once");
    assert_eq!(events, total, "one pick event per scan, no duplicates");
    // Both servers' projections moved the stock counts, each move once.
    swt_tests::stock::assert_consistent(&a.db).await?;
    a.stop().await?;
    b.stop().await?;
    tdb.close().await
}
