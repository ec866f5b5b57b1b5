//! The server is SIGKILLed in the middle of syncs and projections and started again:
//! afterwards every scan the scanners recorded is on the server and projected exactly once.

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use swt_server::demo;
use swt_tests::api::{self, Scanner};
use swt_tests::{TestDb, process, projected};

const GTIN: &str = "00368180513063";
const SCANNERS: usize = 3;
const ROUNDS: usize = 30;
const PER_ROUND: usize = 10;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_swt"))
}

#[test]
fn sigkill_mid_sync_loses_nothing_and_projects_once() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let tdb = rt.block_on(TestDb::new())?;
    let dir = tempfile::tempdir()?;
    // One fixed port for both lives of the server, so scanners need no new address.
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "demo",
        "--listen",
        listen.as_str(),
        "--database-url",
        tdb.url(),
    ];
    let first = process::start(bin(), &args, dir.path())?;
    let base = format!("http://{}", first.addr);

    let (admin, task, devices) = rt.block_on(async {
        let admin = api::login(&base, "admin", demo::LOGINS[3].password).await?;
        let task = api::create_task(
            &base,
            &admin,
            &json!({"kind": "picking", "site": "0614141000012", "refs": {"order": "SO-KILL"}}),
        )
        .await?;
        let mut devices = Vec::new();
        for i in 0..SCANNERS {
            devices.push(
                api::register_device(&base, &admin, "0614141000012", &format!("kill-{i}")).await?,
            );
        }
        anyhow::Ok((admin, task, devices))
    })?;

    let progress = Arc::new(Mutex::new(0usize));
    let mut threads = Vec::new();
    for (i, device) in devices.into_iter().enumerate() {
        let (base, task, progress) = (base.clone(), task.clone(), Arc::clone(&progress));
        threads.push(std::thread::spawn(move || -> anyhow::Result<usize> {
            let mut s = Scanner::sign_in(&base, "picker", demo::LOGINS[0].password, &device, None)?;
            s.sync()?;
            let mut failures = 0;
            for round in 0..ROUNDS {
                for k in 0..PER_ROUND {
                    let scan = s.pack_scan(GTIN, &format!("K{i}R{round}N{k}"), "LK", "300101");
                    s.store.record_scan(&task, &scan)?;
                }
                // While the server is down syncs fail; the scans wait in the store.
                if s.sync().is_err() {
                    failures += 1;
                }
                if let Ok(mut p) = progress.lock() {
                    *p += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // Converge once the server is back.
            for _ in 0..200 {
                let done = s.sync().is_ok_and(|r| {
                    r.in_sync.contains(&task) && r.refused.is_empty() && r.failed.is_empty()
                });
                if done {
                    return Ok(failures);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            anyhow::bail!("scanner {i} never got back in sync")
        }));
    }

    // Kill the server hard once the scanners are well under way.
    while progress.lock().map(|p| *p).unwrap_or(0) < SCANNERS * ROUNDS / 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (exit, _, _) = process::signal_and_wait(first, "-KILL")?;
    assert!(!exit.success(), "SIGKILL ends the process abruptly");
    std::thread::sleep(Duration::from_millis(300));
    let second = process::start(bin(), &args, dir.path())?;

    let mut failures = 0;
    for t in threads {
        failures += t
            .join()
            .map_err(|_| anyhow::anyhow!("scanner thread panicked"))??;
    }
    assert!(
        failures > 0,
        "some syncs met the dead server (else the kill tested nothing)"
    );

    let total = (SCANNERS * ROUNDS * PER_ROUND) as u64;
    rt.block_on(async {
        let (_, detail) = api::get_json(&base, &admin, &format!("/api/v1/tasks/{task}")).await?;
        assert_eq!(detail["scan_count"], total, "{detail}");
        let db = swt_server::db::connect(tdb.url(), 2).await?;
        let (scans, events) = projected::wait_for(&db, &task, total).await?;
        assert_eq!(
            (scans, events),
            (total, total),
            "each scan projected exactly once"
        );
        db.close().await?;
        anyhow::Ok(())
    })?;
    let (exit, _, _) = process::signal_and_wait(second, "-TERM")?;
    assert!(exit.success());
    rt.block_on(tdb.close())
}
