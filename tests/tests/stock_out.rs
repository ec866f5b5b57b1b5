//! Stock out (issue #24, point 3), on the run's back-end: a site's stock snapshot by lot
//! and by serial (JSON and CSV) agrees pack for pack with what the demo's work projected;
//! a reconciliation with the ERP's own snapshot lists exactly the pairs that differ, each
//! with its state; malformed ERP snapshots are refused whole with their line numbers;
//! another organisation's site is as unknown as none; only integration accounts,
//! managers and admins may ask.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use swt_server::db::entity::trace_object;
use swt_server::demo;
use swt_server::stock::{self, By, Format, Snapshot};
use swt_tests::api::{self, Api};
use swt_tests::{TestDb, TestServer, test_config};

const MEMPHIS: &str = "0614141000012";
const LOUISVILLE: &str = "0614141000029";

/// One pack as the snapshot by serial lists it.
type Pack = BTreeMap<&'static str, Value>;

/// The on-hand packs of a site, recounted from `trace_object` pack by pack.
async fn recount(db: &DatabaseConnection, site_id: &str) -> anyhow::Result<Vec<Pack>> {
    let mut packs: Vec<Pack> = trace_object::Entity::find()
        .filter(trace_object::Column::Kind.eq("sgtin"))
        .filter(trace_object::Column::SiteId.eq(site_id))
        .all(db)
        .await?
        .into_iter()
        .filter(|o| !o.status.is_out())
        .map(|o| {
            BTreeMap::from([
                ("gtin", json!(o.gtin)),
                ("serial", json!(o.serial)),
                ("lot", json!(o.lot)),
                ("expiry", json!(o.expiry)),
                ("status", json!(o.status.as_str())),
                ("location", json!(o.location)),
                (
                    "container",
                    json!(
                        o.parent_key
                            .as_deref()
                            .map(|p| p.trim_start_matches("sscc:"))
                    ),
                ),
            ])
        })
        .collect();
    packs.sort_by_key(|p| (p["gtin"].to_string(), p["serial"].to_string()));
    Ok(packs)
}

/// GTIN, lot, expiry and status, each as its JSON text (`null` for none).
type LotKey = (String, String, String, String);

fn lot_key(v: &impl std::ops::Index<&'static str, Output = Value>) -> LotKey {
    (
        v["gtin"].to_string(),
        v["lot"].to_string(),
        v["expiry"].to_string(),
        v["status"].to_string(),
    )
}

/// The packs grouped as the snapshot by lot groups them.
fn by_lot(packs: &[Pack]) -> BTreeMap<LotKey, u64> {
    let mut out = BTreeMap::new();
    for p in packs {
        *out.entry(lot_key(p)).or_default() += 1;
    }
    out
}

fn lot_rows(doc: &Value) -> BTreeMap<LotKey, u64> {
    doc["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| (lot_key(r), r["quantity"].as_u64().unwrap_or(0)))
        .collect()
}

fn serial_rows(doc: &Value) -> Vec<Pack> {
    doc["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            [
                "gtin",
                "serial",
                "lot",
                "expiry",
                "status",
                "location",
                "container",
            ]
            .into_iter()
            .map(|k| (k, r[k].clone()))
            .collect()
        })
        .collect()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSV records, the header line first.
    fn csv(&self) -> anyhow::Result<Vec<Vec<String>>> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(self.text.as_bytes());
        let mut out = Vec::new();
        for r in rdr.records() {
            out.push(r?.iter().map(str::to_owned).collect());
        }
        Ok(out)
    }

    fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_owned()
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_owned()
    }
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn get(&self, token: &str, path: &str, accept: Option<&str>) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        Self::answer(req.send().await?).await
    }

    async fn post(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<Answer> {
        let resp = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        Self::answer(resp).await
    }

    async fn answer(resp: reqwest::Response) -> anyhow::Result<Answer> {
        Ok(Answer {
            status: resp.status(),
            headers: resp.headers().clone(),
            text: resp.text().await?,
        })
    }
}

/// The ERP's CSV for `lines` of (GTIN, lot, quantity).
fn erp_csv(lines: &[(String, String, u64)]) -> String {
    let mut out = "gtin,lot,quantity\n".to_owned();
    for (g, l, n) in lines {
        out.push_str(&format!("{g},{l},{n}\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_snapshots_and_reconciliation() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed_with_activity(&server.db).await?;
    let base = server.base_url.clone();
    let api = Api::new(&base);
    let client = Client {
        base: base.clone(),
        http: swt_tests::http::client(),
    };
    let admin = api::login(&base, "admin", demo::LOGINS[3].password).await?;
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let picker = api::login(&base, "picker", demo::LOGINS[0].password).await?;
    let (status, made) = api
        .post(&admin, "/integrations", json!({"name": "SAP stock"}))
        .await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap_or_default().to_owned();
    swt_tests::stock::assert_consistent(&server.db).await?;

    // By lot, as the ERP: the site's on-hand packs grouped, pack for pack; by GLN or id.
    let memphis = recount(&server.db, demo::SITE_IDS[0]).await?;
    assert!(memphis.len() > 50, "the demo has stock at Memphis");
    let statuses: Vec<&Value> = memphis.iter().map(|p| &p["status"]).collect();
    assert!(
        statuses.iter().any(|s| **s == "in_stock") && !statuses.iter().any(|s| **s == "shipped"),
        "{statuses:?}"
    );
    let lot = client
        .get(&key, &format!("/stock/snapshot?site={MEMPHIS}"), None)
        .await?;
    assert_eq!(lot.status, 200, "{}", lot.text);
    assert!(lot.header("content-type").starts_with("application/json"));
    let doc = lot.json();
    assert_eq!(doc["site_id"], demo::SITE_IDS[0]);
    assert_eq!(doc["site_gln"], MEMPHIS);
    assert_eq!(doc["by"], "lot");
    assert_eq!(doc["as_of"].as_str(), Some(lot.header("swt-as-of")));
    assert!(chrono::DateTime::parse_from_rfc3339(lot.header("swt-as-of")).is_ok());
    assert_eq!(
        doc["on_hand_statuses"],
        json!([
            "unknown",
            "in_stock",
            "picked",
            "packed",
            "returned",
            "quarantined"
        ])
    );
    assert_eq!(lot_rows(&doc), by_lot(&memphis));
    assert_eq!(doc["packs"], memphis.len());
    assert_eq!(doc["row_count"], by_lot(&memphis).len());
    let by_id = client
        .get(
            &manager,
            &format!("/stock/snapshot?site={}&by=lot", demo::SITE_IDS[0]),
            None,
        )
        .await?;
    assert_eq!(by_id.status, 200, "{}", by_id.text);
    assert_eq!(lot_rows(&by_id.json()), by_lot(&memphis));

    // By serial, as a manager: one row per on-hand pack, with its location and container.
    let serial = client
        .get(
            &manager,
            &format!("/stock/snapshot?site={MEMPHIS}&by=serial"),
            None,
        )
        .await?;
    assert_eq!(serial.status, 200, "{}", serial.text);
    let serial_doc = serial.json();
    assert_eq!(serial_rows(&serial_doc), memphis);
    assert_eq!(serial_doc["packs"], memphis.len());
    // Read a few rows per query, the same snapshot comes out: the pages join up in key
    // order.
    let mut small = Snapshot::open(&server.db, demo::ORG_ID, MEMPHIS, By::Serial, Format::Json)
        .await?
        .with_page(7);
    let mut text = Vec::new();
    while let Some(chunk) = small.next_chunk().await? {
        text.extend_from_slice(&chunk);
    }
    let paged: Value = serde_json::from_slice(&text)?;
    assert_eq!(serial_rows(&paged), memphis);
    let mut small = Snapshot::open(&server.db, demo::ORG_ID, MEMPHIS, By::Lot, Format::Json)
        .await?
        .with_page(3);
    let mut text = Vec::new();
    while let Some(chunk) = small.next_chunk().await? {
        text.extend_from_slice(&chunk);
    }
    assert_eq!(lot_rows(&serde_json::from_slice(&text)?), by_lot(&memphis));

    // CSV: by format=csv or Accept; a header line, `as_of` in a response header only.
    let csv = client
        .get(
            &key,
            &format!("/stock/snapshot?site={MEMPHIS}&format=csv"),
            None,
        )
        .await?;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(chrono::DateTime::parse_from_rfc3339(csv.header("swt-as-of")).is_ok());
    let records = csv.csv()?;
    assert_eq!(records[0], stock::LOT_COLUMNS);
    let mut from_csv = BTreeMap::new();
    for r in &records[1..] {
        let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
        from_csv.insert(
            (
                json!(r[0]).to_string(),
                opt(&r[1]).to_string(),
                opt(&r[2]).to_string(),
                json!(r[3]).to_string(),
            ),
            r[4].parse::<u64>()?,
        );
    }
    assert_eq!(from_csv, by_lot(&memphis));
    let csv = client
        .get(
            &key,
            &format!("/stock/snapshot?site={LOUISVILLE}&by=serial"),
            Some("text/csv"),
        )
        .await?;
    assert_eq!(csv.status, 200, "{}", csv.text);
    let records = csv.csv()?;
    assert_eq!(records[0], stock::SERIAL_COLUMNS);
    let louisville = recount(&server.db, demo::SITE_IDS[1]).await?;
    assert_eq!(records.len() - 1, louisville.len());
    assert!(
        records[1..].iter().all(|r| r.len() == 7),
        "every record has the header's seven fields"
    );

    // Reconciliation with the ERP's stock equal to swt's: nothing differs.
    let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for p in &memphis {
        let text = |k: &str| p[k].as_str().unwrap_or("").to_owned();
        *pairs.entry((text("gtin"), text("lot"))).or_default() += 1;
    }
    let same: Vec<(String, String, u64)> = pairs
        .iter()
        .map(|((g, l), n)| (g.clone(), l.clone(), *n))
        .collect();
    let r = client
        .post(
            &key,
            &format!("/stock/reconcile?site={MEMPHIS}"),
            "text/csv",
            erp_csv(&same),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = r.json();
    assert_eq!(report["lines"], json!([]), "{report}");
    assert_eq!(report["summary"]["matching"], same.len());
    assert_eq!(report["summary"]["erp_lines"], same.len());
    assert_eq!(report["summary"]["swt_lines"], same.len());
    assert_eq!(report["summary"]["erp_total"], memphis.len());
    assert_eq!(report["summary"]["swt_total"], memphis.len());
    assert_eq!(report["summary"]["difference"], 0);
    assert_eq!(report["as_of"].as_str(), Some(r.header("swt-as-of")));
    // The same as JSON, as a manager.
    let lines: Vec<Value> = same
        .iter()
        .map(|(g, l, n)| json!({"gtin": g, "lot": l, "quantity": n}))
        .collect();
    let r = client
        .post(
            &manager,
            &format!("/stock/reconcile?site={}", demo::SITE_IDS[0]),
            "application/json",
            json!({ "lines": lines }).to_string(),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["lines"], json!([]));

    // Changed, missing and extra lines: each pair with its state; a zero line for a pair
    // swt does not hold agrees.
    let mut erp = same.clone();
    erp[0].2 += 2;
    let dropped = erp.remove(1);
    let product = erp[0].0.clone();
    erp.push((product.clone(), "NOT-HERE-1".to_owned(), 3));
    erp.push((product.clone(), "NOT-HERE-2".to_owned(), 0));
    let r = client
        .post(
            &key,
            &format!("/stock/reconcile?site={MEMPHIS}"),
            "text/csv",
            erp_csv(&erp),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = r.json();
    let got: BTreeMap<(String, String), (String, i64, u64, u64)> = report["lines"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|d| {
            (
                (
                    d["gtin"].as_str().unwrap_or("").to_owned(),
                    d["lot"].as_str().unwrap_or("").to_owned(),
                ),
                (
                    d["state"].as_str().unwrap_or("").to_owned(),
                    d["difference"].as_i64().unwrap_or(0),
                    d["erp_quantity"].as_u64().unwrap_or(0),
                    d["swt_quantity"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect();
    let (g0, l0, n0) = &same[0];
    let expected = BTreeMap::from([
        (
            (g0.clone(), l0.clone()),
            ("differs".to_owned(), -2, n0 + 2, *n0),
        ),
        (
            (dropped.0.clone(), dropped.1.clone()),
            ("only_in_swt".to_owned(), dropped.2 as i64, 0, dropped.2),
        ),
        (
            (product.clone(), "NOT-HERE-1".to_owned()),
            ("only_in_erp".to_owned(), -3, 3, 0),
        ),
    ]);
    assert_eq!(got, expected, "{report}");
    let s = &report["summary"];
    assert_eq!(s["matching"], same.len() - 2 + 1);
    assert_eq!(
        (
            s["differs"].as_u64(),
            s["only_in_erp"].as_u64(),
            s["only_in_swt"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(s["erp_total"], memphis.len() as u64 + 2 - dropped.2 + 3);
    assert_eq!(s["difference"], dropped.2 as i64 - 5);
    // The report as CSV.
    let r = client
        .post(
            &key,
            &format!("/stock/reconcile?site={MEMPHIS}&format=csv"),
            "text/csv",
            erp_csv(&erp),
        )
        .await?;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("text/csv"));
    assert!(chrono::DateTime::parse_from_rfc3339(r.header("swt-as-of")).is_ok());
    let records = r.csv()?;
    assert_eq!(records[0], stock::REPORT_COLUMNS);
    assert_eq!(records.len(), 4);
    assert!(
        records
            .iter()
            .any(|r| r[1] == "NOT-HERE-1" && r[5] == "only_in_erp")
    );
    assert_eq!(r.header("swt-matching"), (same.len() - 1).to_string());

    // Malformed ERP snapshots: refused whole, the bad lines named.
    let g = &same[0].0;
    let bad_digit = format!("{}{}", &g[..13], (g[13..].parse::<u8>()? + 1) % 10);
    let path = format!("/stock/reconcile?site={MEMPHIS}");
    for (body, code, named) in [
        (
            format!("gtin,lot,quantity\n{g},A,1\n{bad_digit},B,1\n"),
            "invalid_snapshot",
            vec!["line 3"],
        ),
        (
            format!("gtin,lot,quantity\n{g},A,-1\n"),
            "invalid_snapshot",
            vec!["line 2"],
        ),
        (
            format!("gtin,lot,quantity\n{g},A,1\n{g},B,2.5\n{g},C,x\n"),
            "invalid_snapshot",
            vec!["line 3", "line 4"],
        ),
        (
            format!("gtin,lot,quantity\n{g},A,1\n{g},B,1\n{g},A,2\n"),
            "invalid_snapshot",
            vec!["line 4", "line 2"],
        ),
        (
            format!("gtin,lot,quantity\n{g},A,1\n{g},B\n"),
            "invalid_snapshot",
            vec!["line 3"],
        ),
        (
            format!("gtin,lot,quantity\n{g},bad lot with spaces,1\n"),
            "invalid_snapshot",
            vec!["line 2"],
        ),
        (format!("gtin,qty\n{g},1\n"), "bad_request", vec!["line 1"]),
        (String::new(), "bad_request", vec![]),
    ] {
        let r = client.post(&key, &path, "text/csv", body.clone()).await?;
        let want = if code == "bad_request" { 400 } else { 422 };
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (want, code.to_owned()),
            "{body}: {}",
            r.text
        );
        for n in named {
            assert!(r.message().contains(n), "{body}: {} names {n}", r.message());
        }
    }
    for (body, code, named) in [
        (
            json!({"lines": [{"gtin": g, "lot": "A", "quantity": 1}, {"gtin": g, "lot": "B", "quantity": -1}]}),
            "invalid_snapshot",
            "lines[1]",
        ),
        (
            json!({"lines": [{"gtin": bad_digit, "lot": "A", "quantity": 1}]}),
            "invalid_snapshot",
            "lines[0]",
        ),
        (
            json!({"lines": [{"gtin": g, "lot": "A", "quantity": 1.5}]}),
            "invalid_snapshot",
            "lines[0]",
        ),
        (json!({"rows": []}), "bad_request", "rows"),
    ] {
        let r = client
            .post(&key, &path, "application/json", body.to_string())
            .await?;
        let want = if code == "bad_request" { 400 } else { 422 };
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (want, code.to_owned()),
            "{body}: {}",
            r.text
        );
        assert!(r.message().contains(named), "{}", r.message());
    }
    let r = client
        .post(&key, &path, "application/xml", "<stock/>")
        .await?;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (415, "unsupported_media_type".to_owned())
    );
    let many: Vec<(String, String, u64)> = (0..=stock::MAX_LINES)
        .map(|i| (g.clone(), format!("L{i}"), 1))
        .collect();
    let r = client.post(&key, &path, "text/csv", erp_csv(&many)).await?;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (422, "too_many_lines".to_owned()),
        "{}",
        r.message()
    );
    let huge = format!("gtin,lot,quantity\n{}", "x".repeat(stock::BODY_LIMIT));
    let r = client.post(&key, &path, "text/csv", huge).await?;
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "payload_too_large");

    // Another organisation's site is as unknown as none; so is a GLN of no site.
    let other = swt_server::auth::service::add_org(&server.db, "Other 3PL", None).await?;
    let theirs = swt_server::auth::service::add_site(
        &server.db,
        &other.id,
        "Their DC",
        "0614141000036",
        None,
        "America/Chicago",
    )
    .await?;
    for site in [theirs.id.as_str(), "0614141000036", "0614141000999", ""] {
        let r = client
            .get(&key, &format!("/stock/snapshot?site={site}"), None)
            .await?;
        let want = if site.is_empty() { 400 } else { 404 };
        assert_eq!(r.status, want, "{site}: {}", r.text);
        if want == 404 {
            assert_eq!(r.code(), "unknown_site");
        }
        let r = client
            .post(
                &manager,
                &format!("/stock/reconcile?site={site}"),
                "text/csv",
                erp_csv(&same),
            )
            .await?;
        assert_eq!(r.status, want, "{site}: {}", r.text);
    }

    // Who may ask: not a picker, not without a credential, not a revoked or made-up key.
    let r = client
        .get(&picker, &format!("/stock/snapshot?site={MEMPHIS}"), None)
        .await?;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden".to_owned()));
    let r = client
        .post(&picker, &path, "text/csv", erp_csv(&same))
        .await?;
    assert_eq!(r.status, 403);
    let r = client
        .get(
            "swti_not-a-key",
            &format!("/stock/snapshot?site={MEMPHIS}"),
            None,
        )
        .await?;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (401, "invalid_integration_key".to_owned())
    );
    let anonymous = swt_tests::http::client()
        .get(format!("{base}/api/v1/stock/snapshot?site={MEMPHIS}"))
        .send()
        .await?;
    assert_eq!(anonymous.status(), 401);
    let account = made["id"].as_str().unwrap_or_default();
    let (status, _) = api
        .post(
            &admin,
            &format!("/integrations/{account}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let r = client
        .get(&key, &format!("/stock/snapshot?site={MEMPHIS}"), None)
        .await?;
    assert_eq!(r.status, 401);
    // An unknown `by` or `format` is a bad request, answered as JSON.
    let r = client
        .get(
            &manager,
            &format!("/stock/snapshot?site={MEMPHIS}&by=bin"),
            None,
        )
        .await?;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, "bad_request".to_owned())
    );

    server.stop().await?;
    tdb.close().await
}
