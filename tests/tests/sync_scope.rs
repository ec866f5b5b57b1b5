//! What a scanner holds (issue #21): by default only the tasks it works on. Two scanners
//! on one task merge and see each other's scans; a third task never reaches them; a task
//! a manager ends leaves each device once the device's scans are on the server, and not
//! before. On both back-ends.

use serde_json::json;
use swt_core::sync::{SyncPlan, SyncScope};
use swt_server::demo;
use swt_tests::api::{self, Scanner};
use swt_tests::{TestDb, TestServer, test_config};

const GTIN: &str = "00361500231012";
const SITE: &str = "0614141000012";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

fn working() -> SyncPlan {
    SyncPlan {
        scope: SyncScope::Working,
        fetch_list: true,
        only: None,
    }
}

/// Opens a task as the session does: an empty document the next sync fills.
fn open(s: &mut Scanner, task: &str) -> anyhow::Result<()> {
    let empty = swt_core::doc::TaskDocument::empty(s.actor.clone());
    s.store.insert_doc(task, empty)?;
    Ok(())
}

fn held(s: &Scanner) -> Vec<String> {
    s.store.doc_ids()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanners_hold_what_they_work_on_and_let_finished_tasks_go() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let task = |order: &str| {
        json!({"kind": "picking", "site": SITE, "refs": {"order": order},
            "expected": {"lines": [{"gtin": GTIN, "quantity": 10}]}})
    };
    let shared = api::create_task(&base, &manager, &task("SO-SHARED")).await?;
    let other = api::create_task(&base, &manager, &task("SO-OTHER")).await?;
    let password = demo::LOGINS[0].password;

    // Two pickers open the same task; each records two picks and syncs twice.
    let (b, t, o) = (base.clone(), shared.clone(), other.clone());
    let (mut a, mut c) = blocking(move || {
        let mut a = Scanner::sign_in(&b, "picker", password, demo::DEVICES[0].0, None)?;
        let mut c = Scanner::sign_in(&b, "picker", password, demo::DEVICES[1].0, None)?;
        for (s, tag) in [(&mut a, "A"), (&mut c, "C")] {
            let r = s.sync_with(&working())?;
            let listed: Vec<&str> = r
                .task_list
                .iter()
                .flatten()
                .map(|t| t.id.as_str())
                .collect();
            anyhow::ensure!(listed.contains(&t.as_str()) && listed.contains(&o.as_str()));
            anyhow::ensure!(r.new_tasks.is_empty() && held(s).is_empty(), "{r:?}");
            open(s, &t)?;
            let r = s.sync_with(&working())?;
            anyhow::ensure!(r.in_sync.contains(&t), "fetched when opened: {r:?}");
            for n in 0..2 {
                let scan = s.pack_scan(GTIN, &format!("{tag}{n}"), "L1", "290131");
                s.store.record_scan(&t, &scan)?;
            }
            s.sync_with(&working())?;
        }
        // A syncs again and gets C's scans; neither ever held the other task.
        a.sync_with(&working())?;
        for s in [&mut a, &mut c] {
            let scans = s.store.doc(&t).map(|d| d.scan_count()).unwrap_or(0);
            anyhow::ensure!(scans == 4, "both pickers' scans on each device: {scans}");
            anyhow::ensure!(held(s) == vec![t.clone()], "only the task worked on");
        }
        Ok((a, c))
    })
    .await?;

    // Ending a task is for managers, is checked, and is idempotent.
    let api = api::Api::new(&base);
    let path = format!("/tasks/{shared}/status");
    let picker = api::login(&base, "picker", password).await?;
    let (st, body) = api.post(&picker, &path, json!({"status": "closed"})).await;
    assert_eq!(st, 403, "{body}");
    let (st, body) = api.post(&manager, &path, json!({"status": "done"})).await;
    assert_eq!(
        (st.as_u16(), body["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (st, body) = api
        .post(
            &manager,
            &format!("/tasks/{}/status", "nope"),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(
        (st.as_u16(), body["code"].as_str()),
        (404, Some("not_found"))
    );

    // C records one more pick offline before it learns of the close.
    let t = shared.clone();
    let mut c = blocking(move || {
        let scan = c.pack_scan(GTIN, "C-late", "L1", "290131");
        c.store.record_scan(&t, &scan)?;
        Ok(c)
    })
    .await?;
    let (st, body) = api.post(&manager, &path, json!({"status": "closed"})).await;
    assert_eq!(
        (st.as_u16(), body["status"].as_str()),
        (200, Some("closed")),
        "{body}"
    );
    let (st, again) = api.post(&manager, &path, json!({"status": "closed"})).await;
    assert_eq!(
        (st.as_u16(), again["version"].clone()),
        (200, body["version"].clone())
    );
    let (st, body) = api
        .post(&manager, &path, json!({"status": "cancelled"}))
        .await;
    assert_eq!(
        (st.as_u16(), body["code"].as_str()),
        (409, Some("task_not_open"))
    );

    let t = shared.clone();
    let (a, c) = blocking(move || {
        // A holds nothing unsynced: the closed task leaves it.
        let r = a.sync_with(&working())?;
        anyhow::ensure!(r.removed == vec![t.clone()] && held(&a).is_empty(), "{r:?}");
        // C's late scan goes up first, in the same run, and only then does the task go.
        anyhow::ensure!(c.store.unsynced_writes(&t)? == 1);
        let r = c.sync_with(&working())?;
        anyhow::ensure!(r.removed == vec![t.clone()] && held(&c).is_empty(), "{r:?}");
        Ok((a, c))
    })
    .await?;
    let (_, detail) = api::get_json(&base, &manager, &format!("/api/v1/tasks/{shared}")).await?;
    assert_eq!(detail["scan_count"], 5, "the late scan is kept: {detail}");
    drop((a, c));

    // A device that follows the site gets every open task, the other one included.
    let (b, o) = (base.clone(), other.clone());
    blocking(move || {
        let mut s = Scanner::sign_in(&b, "picker", password, demo::DEVICES[0].0, None)?;
        let r = s.sync_with(&SyncPlan::site())?;
        anyhow::ensure!(
            r.new_tasks == vec![o.clone()] && held(&s) == vec![o],
            "{r:?}"
        );
        Ok(())
    })
    .await?;
    server.stop().await?;
    tdb.close().await
}
