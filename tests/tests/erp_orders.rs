//! ERP orders in (issue #24), on the run's back-end: an integration account sends orders
//! over REST with idempotency keys; the same order twice makes one task; an update of an
//! open task reaches the scanners at their next sync, of a closed one is refused;
//! revoking the account refuses its next request; hostile and broken orders are refused
//! with a clear code and leave nothing behind; the CSV drop reports bad lines by number
//! and imports nothing with `strict`.

use reqwest::{Method, StatusCode};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use swt_server::db::entity::{erp_order, erp_order_request, task_document};
use swt_server::demo;
use swt_server::orders::{self, file};
use swt_tests::api::{self, Api, Scanner};
use swt_tests::{TestDb, TestServer, test_config};

const SITE_GLN: &str = "0614141000012";
const CUSTOMER_GLN: &str = "0860000000017";
/// A valid GTIN-14 (check digit right) that is in no product master.
const UNKNOWN_GTIN: &str = "00312345678906";

fn gtin(i: usize) -> &'static str {
    demo::product_gtins().nth(i).unwrap_or_default()
}

async fn counts(db: &DatabaseConnection) -> anyhow::Result<(u64, u64, u64)> {
    Ok((
        task_document::Entity::find().count(db).await?,
        erp_order::Entity::find().count(db).await?,
        erp_order_request::Entity::find().count(db).await?,
    ))
}

async fn put_order(
    api: &Api,
    key: &str,
    path: &str,
    idempotency: &str,
    body: &Value,
) -> (StatusCode, Value) {
    api.call_with(
        Method::PUT,
        key,
        &format!("/orders/{path}"),
        Some(body.clone()),
        &[("Idempotency-Key", idempotency)],
    )
    .await
}

fn picking(lines: Value) -> Value {
    json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN, "lines": lines})
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// (GTIN, quantity) of a scanner's copy of a task's expected lines.
fn seen_lines(s: &Scanner, task: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let doc = s
        .store
        .doc(task)
        .ok_or_else(|| anyhow::anyhow!("the scanner has no task {task}"))?;
    Ok(doc
        .expected()?
        .lines
        .iter()
        .map(|l| (l.gtin.as_str().to_owned(), l.quantity))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_order_becomes_one_task_that_scanners_see_and_updates() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let api = Api::new(&base);
    let admin = api::login(&base, "admin", demo::LOGINS[3].password).await?;
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;

    // Admins make integration accounts; managers may not; the key is shown once.
    let (status, body) = api
        .post(&manager, "/integrations", json!({"name": "SAP"}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, made) = api
        .post(&admin, "/integrations", json!({"name": "SAP production"}))
        .await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap_or_default().to_owned();
    assert!(key.starts_with("swti_") && key.len() > 40, "{made}");
    let account = made["id"].as_str().unwrap_or_default().to_owned();
    let (status, list) = api.get(&admin, "/integrations").await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], account.as_str(), "{list}");
    assert!(
        list[0].get("key").is_none(),
        "the key is never listed: {list}"
    );

    // The key opens the order routes only; people's tokens do not send orders.
    let (status, body) = api.get(&key, "/tasks").await;
    assert_eq!(
        status, 401,
        "an integration key is no person's token: {body}"
    );
    let order = picking(json!([{"gtin": gtin(0), "quantity": 3}]));
    let (status, body) = put_order(&api, &manager, "picking/SO-1", "k1", &order).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(counts(&server.db).await?, (0, 0, 0));

    // The order makes one task; a retry with the same key gets the same answer; the same
    // order with a new key changes nothing.
    let (status, first) = put_order(&api, &key, "picking/SO-1", "k1", &order).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["outcome"], "created");
    let task = first["task_id"].as_str().unwrap_or_default().to_owned();
    let (status, again) = put_order(&api, &key, "picking/SO-1", "k1", &order).await;
    assert_eq!((status.as_u16(), &again), (201, &first));
    let (status, resent) = put_order(&api, &key, "picking/SO-1", "k2", &order).await;
    assert_eq!(status, 200, "{resent}");
    assert_eq!(resent["outcome"], "unchanged");
    assert_eq!(resent["task_id"], task.as_str());
    assert_eq!(counts(&server.db).await?, (1, 1, 2));
    // A key used again with another order is refused, and changes nothing.
    let other = picking(json!([{"gtin": gtin(0), "quantity": 4}]));
    let (status, body) = put_order(&api, &key, "picking/SO-1", "k1", &other).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    let (status, body) = put_order(&api, &key, "picking/SO-9", "k1", &order).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    assert_eq!(counts(&server.db).await?, (1, 1, 2));

    // The task is the order: kind, site, references, expected lines.
    let (status, detail) = api.get(&manager, &format!("/tasks/{task}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["kind"], "picking");
    assert_eq!(detail["refs"]["order"], "SO-1");
    assert_eq!(detail["refs"]["customer_gln"], CUSTOMER_GLN);
    assert_eq!(
        detail["lines"],
        json!([{"gtin": gtin(0), "quantity": 3, "lot": null}])
    );

    // A scanner of the site gets the task and its lines at its sync.
    let (b, t) = (base.clone(), task.clone());
    let scanner = blocking(move || {
        let mut s = Scanner::sign_in(
            &b,
            "picker",
            demo::LOGINS[0].password,
            demo::DEVICES[0].0,
            None,
        )?;
        let report = s.sync()?;
        anyhow::ensure!(report.new_tasks.contains(&t), "{report:?}");
        let lines = seen_lines(&s, &t)?;
        anyhow::ensure!(lines == vec![(gtin(0).to_owned(), 3)], "{lines:?}");
        Ok(s)
    })
    .await?;

    // The ERP changes the order: the open task's lines change, and the scanner sees it
    // at its next sync.
    let changed = picking(json!([
        {"gtin": gtin(0), "quantity": 5},
        {"gtin": gtin(1), "quantity": 2, "lot": "L7"}
    ]));
    let (status, body) = put_order(&api, &key, "picking/SO-1", "k3", &changed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "updated");
    assert_eq!(body["task_id"], task.as_str());
    let t = task.clone();
    blocking(move || {
        let mut s = scanner;
        s.sync()?;
        let lines = seen_lines(&s, &t)?;
        anyhow::ensure!(
            lines == vec![(gtin(0).to_owned(), 5), (gtin(1).to_owned(), 2)],
            "the scanner sees the update: {lines:?}"
        );
        Ok(())
    })
    .await?;
    assert_eq!(counts(&server.db).await?.0, 1, "still one task");

    // Several copies of a new order at once make one task.
    let new = picking(json!([{"gtin": gtin(2), "quantity": 1}]));
    let sends = (0..4).map(|i| {
        let (api, key, new) = (api.clone(), key.clone(), new.clone());
        tokio::spawn(async move {
            put_order(&api, &key, "picking/SO-2", &format!("race-{i}"), &new).await
        })
    });
    let mut created = 0;
    let mut tasks = std::collections::BTreeSet::new();
    for send in sends {
        let (status, body) = send.await?;
        assert!(status == 201 || status == 200, "{status} {body}");
        created += usize::from(status == 201);
        tasks.insert(body["task_id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!((created, tasks.len()), (1, 1), "{tasks:?}");
    assert_eq!(counts(&server.db).await?.0, 2);

    // A closed task no longer changes: 409; the same order as it is stays unchanged.
    let (status, body) = api
        .post(
            &manager,
            &format!("/tasks/{task}/status"),
            json!({"status": "closed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let late = picking(json!([{"gtin": gtin(0), "quantity": 9}]));
    let (status, body) = put_order(&api, &key, "picking/SO-1", "k4", &late).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "task_not_open");
    let (status, body) = put_order(&api, &key, "picking/SO-1", "k5", &changed).await;
    assert_eq!(
        (status.as_u16(), body["outcome"].as_str()),
        (200, Some("unchanged"))
    );
    let (_, detail) = api.get(&manager, &format!("/tasks/{task}")).await;
    assert_eq!(
        detail["lines"][0]["quantity"], 5,
        "the closed task kept its lines: {detail}"
    );

    // Revoked, the key is refused at its next request.
    let (status, body) = api
        .post(
            &admin,
            &format!("/integrations/{account}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["revoked_at"].is_string(), "{body}");
    let (status, body) = put_order(&api, &key, "picking/SO-3", "k6", &order).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "invalid_integration_key");
    assert_eq!(counts(&server.db).await?.0, 2);

    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_hostile_orders_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let api = Api::new(&base);
    let made = swt_server::auth::integration::add(&server.db, demo::ORG_ID, "ERP", "test").await?;
    let key = made.key;
    // Another organisation's site: never the caller's.
    let other_org = swt_server::auth::service::add_org(&server.db, "Other", None).await?;
    swt_server::auth::service::add_site(
        &server.db,
        &other_org.id,
        "Elsewhere",
        "0614141000036",
        None,
        "UTC",
    )
    .await?;

    let good_line = json!({"gtin": gtin(0), "quantity": 1});
    let with = |field: &str, value: Value| {
        let mut o = picking(json!([good_line.clone()]));
        o[field] = value;
        o
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "picking/A1",
            with("site_gln", json!("0614141000036")),
            422,
            "unknown_site",
        ),
        (
            "picking/A2",
            with("site_gln", json!("0614141000013")),
            422,
            "invalid_order",
        ),
        (
            "picking/A3",
            with("partner_gln", json!("086000000001")),
            422,
            "invalid_order",
        ),
        (
            "picking/A4",
            picking(json!([{"gtin": UNKNOWN_GTIN, "quantity": 1}])),
            422,
            "unknown_product",
        ),
        (
            "picking/A5",
            picking(json!([{"gtin": "00361500231013", "quantity": 1}])),
            422,
            "invalid_order",
        ),
        (
            "picking/A6",
            picking(json!([{"gtin": gtin(0), "quantity": 0}])),
            422,
            "invalid_order",
        ),
        (
            "picking/A7",
            picking(json!([{"gtin": gtin(0), "quantity": -2}])),
            400,
            "bad_request",
        ),
        (
            "picking/A8",
            picking(json!([{"gtin": gtin(0), "quantity": 1, "lot": "L".repeat(21)}])),
            422,
            "invalid_order",
        ),
        // One good line and one bad: the order is refused whole.
        (
            "picking/A9",
            picking(json!([good_line.clone(), {"gtin": UNKNOWN_GTIN, "quantity": 2}])),
            422,
            "unknown_product",
        ),
        ("picking/A10", picking(json!([])), 422, "invalid_order"),
        (
            "picking/A11",
            with("colour", json!("red")),
            400,
            "bad_request",
        ),
        (
            "picking/A12",
            with("refs", json!({"order": "SO-X"})),
            422,
            "invalid_order",
        ),
        (
            "picking/A13",
            with("refs", json!({"evil": "x"})),
            422,
            "invalid_order",
        ),
        (
            "returns/A14",
            picking(json!([good_line.clone()])),
            422,
            "invalid_order",
        ),
        (
            "picking/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            picking(json!([good_line.clone()])),
            422,
            "invalid_order",
        ),
        (
            "receiving/A16",
            json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN,
            "units": [{"sscc": "106141412345678909"}]}),
            422,
            "invalid_order",
        ),
        (
            "receiving/A17",
            json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN,
            "units": [{"gtin": gtin(0), "serial": "S1", "parent_sscc": "106141412345678908"}]}),
            422,
            "invalid_order",
        ),
        (
            "receiving/A18",
            json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN,
            "units": [{"gtin": UNKNOWN_GTIN, "serial": "S1"}]}),
            422,
            "unknown_product",
        ),
        (
            "receiving/A19",
            json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN,
            "units": [{"sscc": "106141412345678908", "gtin": gtin(0)}]}),
            422,
            "invalid_order",
        ),
        ("receiving/A20", json!("not an order"), 400, "bad_request"),
    ];
    for (path, body, status, code) in &cases {
        let (got, answer) = put_order(&api, &key, path, "key-1", body).await;
        assert_eq!(
            (got.as_u16(), answer["code"].as_str()),
            (*status, Some(*code)),
            "{path}: {body} → {answer}"
        );
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    // No key, no order.
    let (status, body) = api
        .call(
            Method::PUT,
            &key,
            "/orders/picking/B1",
            Some(picking(json!([good_line.clone()]))),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (400, Some("idempotency_key_required"))
    );
    // No credential, or a made-up one.
    let (status, _) = api
        .call_with(
            Method::PUT,
            "swti_made-up",
            "/orders/picking/B2",
            Some(picking(json!([good_line.clone()]))),
            &[("Idempotency-Key", "x")],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(counts(&server.db).await?, (0, 0, 0), "nothing was created");

    // A valid order with an ASN hierarchy is taken, the messages above notwithstanding.
    let asn = json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN, "refs": {"asn": "DESADV-7"},
        "units": [{"sscc": "106141412345678908"},
                  {"gtin": gtin(0), "serial": "S1", "parent_sscc": "106141412345678908"}]});
    let (status, body) = put_order(&api, &key, "receiving/PO-7", "key-2", &asn).await;
    assert_eq!(status, 201, "{body}");
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let (_, detail) = api
        .get(
            &manager,
            &format!("/tasks/{}", body["task_id"].as_str().unwrap_or_default()),
        )
        .await;
    assert_eq!(detail["refs"]["po"], "PO-7", "{detail}");
    assert_eq!(detail["refs"]["asn"], "DESADV-7", "{detail}");
    assert_eq!(detail["refs"]["supplier_gln"], CUSTOMER_GLN, "{detail}");
    assert_eq!(
        detail["units"].as_array().map(Vec::len),
        Some(2),
        "{detail}"
    );
    // An update may not move the order to another partner.
    let mut moved = asn.clone();
    moved["partner_gln"] = json!("0614141000029");
    let (status, body) = put_order(&api, &key, "receiving/PO-7", "key-3", &moved).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("order_conflict")),
        "{body}"
    );

    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_file_reports_bad_lines_and_strict_imports_nothing() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let caller = swt_server::auth::integration::principal("cli", demo::ORG_ID);
    let docs = swt_server::tasks::documents::DocumentCache::new(0);
    let actor = automerge::ActorId::random();
    let apply = orders::Apply {
        db: &server.db,
        docs: &docs,
        actor: &actor,
    };
    let (g0, g1) = (gtin(0), gtin(1));
    let text = format!(
        "Order_Ref,kind,site_gln,partner_gln,gtin,quantity,lot,sscc,serial,parent_sscc,asn\n\
         SO-10,picking,{SITE_GLN},{CUSTOMER_GLN},{g0},2,,,,,\n\
         SO-10,picking,{SITE_GLN},{CUSTOMER_GLN},{g1},1,L1,,,,\n\
         SO-11,picking,{SITE_GLN},{CUSTOMER_GLN},{UNKNOWN_GTIN},1,,,,,\n\
         SO-11,picking,{SITE_GLN},{CUSTOMER_GLN},{g0},lots,,,,,\n\
         PO-12,receiving,{SITE_GLN},{CUSTOMER_GLN},,,,106141412345678908,,,D-1\n\
         PO-12,receiving,{SITE_GLN},{CUSTOMER_GLN},{g0},,,,S9,106141412345678908,D-1\n\
         PO-13,receiving,{SITE_GLN},0614141000029,{g0},4,,,,,\n\
         PO-13,receiving,{SITE_GLN},{CUSTOMER_GLN},{g0},4,,,,,\n\
         SO-14,picking,0614141000036,{CUSTOMER_GLN},{g0},1,,,,,\n"
    );
    let (found, loose, lines) = file::read(text.as_bytes())?;
    assert_eq!((found.len(), lines), (5, 9));

    let report = file::import(&apply, &caller, &found, loose.clone(), lines, true, |_| {}).await?;
    let bad: Vec<u64> = report.bad_lines.iter().map(|b| b.line).collect();
    // SO-11: line 4 unknown GTIN, line 5 quantity; PO-13: line 9 differs from line 8;
    // SO-14: line 10, a site not of this organisation.
    assert_eq!(bad, vec![4, 5, 9, 10], "{report:?}");
    assert_eq!((report.created, report.bad_orders), (0, 3), "{report:?}");
    assert_eq!(
        counts(&server.db).await?,
        (0, 0, 0),
        "--strict imported nothing"
    );

    let report = file::import(&apply, &caller, &found, loose.clone(), lines, false, |_| {}).await?;
    assert_eq!(
        (report.created, report.bad_orders, report.bad),
        (2, 3, 4),
        "{report:?}"
    );
    assert_eq!(counts(&server.db).await?.0, 2, "the good orders only");
    // The same file again: the good orders are known as they are.
    let report = file::import(&apply, &caller, &found, loose, lines, false, |_| {}).await?;
    assert_eq!((report.created, report.unchanged), (0, 2), "{report:?}");
    assert_eq!(counts(&server.db).await?.0, 2);

    // A file without the required columns is refused before anything.
    assert!(file::read("kind,order_ref\n".as_bytes()).is_err());
    assert!(file::read("kind,order_ref,site_gln,partner_gln,colour\n".as_bytes()).is_err());

    server.stop().await?;
    tdb.close().await
}
