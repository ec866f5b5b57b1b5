//! The traceability API over HTTP with real tokens: serial history (paged), container
//! explosion, lot whereabouts, stock, exceptions and their resolution; another
//! organisation sees nothing (404); roles.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod projection_support;
use projection_support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use swt_domain::doc::TaskKind;
use swt_domain::model::Action;
use swt_server::auth::Role;
use swt_server::projection::project_document;
use swt_server::state::AppState;
use swt_tests::api::{Api, mint_token};
use swt_tests::{TestDb, test_config};

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `(id, depth)` of each entry of a contents page.
fn listed(page: &Value) -> Vec<(String, u64)> {
    page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["id"].as_str().unwrap_or_default().to_owned(),
                        e["depth"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every entry of a container's contents, `size` per page, and the number of pages.
async fn walk(api: &Api, token: &str, contents: &str, size: usize) -> (Vec<(String, u64)>, usize) {
    let (mut walked, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let url = match &cursor {
            Some(c) => format!("{contents}?limit={size}&cursor={c}"),
            None => format!("{contents}?limit={size}"),
        };
        let (s, page) = api.get(token, &url).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        walked.extend(listed(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages <= 10, "limit {size}: no end");
    }
    (walked, pages)
}

#[tokio::test]
async fn trace_api_end_to_end() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let config = test_config(tdb.url());
    let db = swt_server::app::open_database(&config).await?;
    org_with_site(&db, "org-a", "site-1", GLN).await;
    org_with_site(&db, "org-b", "site-b", "4098765000027").await;

    // The receiving document as first synced (pallet received, contents inferred) …
    let mut first = document(TaskKind::Receiving, "site-1", &[("po", "PO-1")]);
    first.set_expected(&inbound_expected(), 0)?;
    first.add_scan(&scan(
        "rcv.1",
        Item::Sscc(PALLET),
        Action::Receive,
        Some("DOCK-01"),
        None,
        at(0),
        "u-recv",
        "dev-1",
    ))?;
    project_document(&db, "org-a", "doc-rcv", &first).await?;

    let state = AppState::new(db.clone(), config);
    let keys = state.keys.clone();
    let (router, openapi) = swt_server::trace::routes().split_for_parts();
    let app = axum::Router::new()
        .nest("/api/v1", router)
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let api = Api::new(&format!("http://{addr}"));
    let manager = mint_token(&keys, &db, "m-a", "org-a", Role::Manager).await?;
    let picker = mint_token(&keys, &db, "p-a", "org-a", Role::Picker).await?;
    let other = mint_token(&keys, &db, "m-b", "org-b", Role::Manager).await?;

    // Container explosion of the unopened pallet: 2 cases with 2 packs each, depth
    // first, each case followed by its packs.
    let contents = format!("/trace/containers/sscc:{PALLET}/contents");
    let (s, all) = api.get(&manager, &contents).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(all["container"]["id"], format!("sscc:{PALLET}"));
    assert!(all["next_cursor"].is_null(), "{all}");
    let expected: Vec<(String, u64)> = vec![
        (format!("sgtin:{CASE_GTIN}:C1"), 1),
        (format!("sgtin:{UNIT_GTIN}:SN1"), 2),
        (format!("sgtin:{UNIT_GTIN}:SN2"), 2),
        (format!("sgtin:{CASE_GTIN}:C2"), 1),
        (format!("sgtin:{UNIT_GTIN}:SN3"), 2),
        (format!("sgtin:{UNIT_GTIN}:SN4"), 2),
    ];
    assert_eq!(listed(&all), expected);
    assert_eq!(all["items"][5]["location"], "DOCK-01");
    assert_eq!(all["items"][5]["parent"], format!("sgtin:{CASE_GTIN}:C2"));
    // Pages of every size walk the same list, and the last one says it is the last.
    for size in 1..=6 {
        let (walked, pages) = walk(&api, &manager, &contents, size).await;
        assert_eq!(walked, expected, "limit {size}");
        assert_eq!(pages, expected.len().div_ceil(size), "limit {size}");
    }
    let (s, top) = api.get(&manager, &format!("{contents}?max_depth=1")).await;
    assert_eq!(s, StatusCode::OK, "{top}");
    assert_eq!(listed(&top), vec![expected[0].clone(), expected[3].clone()]);
    for cursor in ["nonsense!", "W10", "W251bGwsIm51bGwiXQ"] {
        let (s, body) = api
            .get(&manager, &format!("{contents}?cursor={cursor}"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{cursor}: {body}");
    }

    // … then fully, plus two pick orders that picked SN1 twice.
    project_document(&db, "org-a", "doc-rcv", &receiving_doc("site-1")).await?;
    for (doc_id, order, picks, device) in [
        (
            "doc-a",
            "ORD-A",
            [("pa.1", "SN1", at(60)), ("pa.2", "SN2", at(61))],
            "dev-a",
        ),
        (
            "doc-b",
            "ORD-B",
            [("pb.1", "SN1", at(55)), ("pb.2", "SN3", at(56))],
            "dev-b",
        ),
    ] {
        let mut d = document(TaskKind::Picking, "site-1", &[("order", order)]);
        for (id, sn, t) in picks {
            d.add_scan(&scan(
                id,
                Item::Pack(sn),
                Action::Pick,
                Some("PICK-01"),
                None,
                t,
                "u-pick",
                device,
            ))?;
        }
        project_document(&db, "org-a", doc_id, &d).await?;
    }

    // Receiving unpacked both cases and the picks emptied C1: the pallet and C1 are
    // containers with nothing in them now (one page, empty, no cursor); C2 keeps SN4.
    for (container, inside) in [
        (format!("sscc:{PALLET}"), vec![]),
        (format!("sgtin:{CASE_GTIN}:C1"), vec![]),
        (
            format!("sgtin:{CASE_GTIN}:C2"),
            vec![(format!("sgtin:{UNIT_GTIN}:SN4"), 1)],
        ),
    ] {
        for size in 1..=2 {
            let path = format!("/trace/containers/{container}/contents");
            let (walked, pages) = walk(&api, &manager, &path, size).await;
            assert_eq!(walked, inside, "{container}, limit {size}");
            assert_eq!(pages, 1, "{container}, limit {size}");
        }
    }

    // History of SN1, addressed by its Digital Link, two per page.
    let dl = format!("https://id.gs1.org/01/{UNIT_GTIN}/21/SN1");
    let (s, p1) = api
        .get(
            &picker,
            &format!("/trace/objects/{}/history?limit=2", enc(&dl)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    let steps = |p: &Value| -> Vec<(String, String, String)> {
        p["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["biz_step"].as_str().unwrap_or_default().to_owned(),
                            e["user_id"].as_str().unwrap_or_default().to_owned(),
                            e["device_id"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        steps(&p1),
        vec![
            (
                "picking".to_owned(),
                "u-pick".to_owned(),
                "dev-b".to_owned()
            ),
            // A's scan first told swt SN1's lot and expiry.
            (
                "commissioning".to_owned(),
                "u-pick".to_owned(),
                "dev-a".to_owned()
            ),
        ]
    );
    assert_eq!(p1["items"][1]["role"], "epc");
    assert_eq!(p1["items"][0]["location"], "PICK-01");
    let cursor = p1["next_cursor"].as_str().expect("more pages").to_owned();
    let (_, p2) = api
        .get(
            &picker,
            &format!(
                "/trace/objects/sgtin:{UNIT_GTIN}:SN1/history?limit=2&cursor={}",
                enc(&cursor)
            ),
        )
        .await;
    assert_eq!(
        steps(&p2),
        vec![
            (
                "unpacking".to_owned(),
                "u-pick".to_owned(),
                "dev-a".to_owned()
            ),
            (
                "picking".to_owned(),
                "u-pick".to_owned(),
                "dev-a".to_owned()
            )
        ]
    );
    assert_eq!(p2["items"][0]["role"], "child");
    assert!(p2["next_cursor"].is_null());
    let (s, obj) = api
        .get(&picker, &format!("/trace/objects/sgtin:{UNIT_GTIN}:SN1"))
        .await;
    assert_eq!(
        (s, obj["status"].as_str(), obj["order_ref"].as_str()),
        (StatusCode::OK, Some("picked"), Some("ORD-A"))
    );
    let (s, ep) = api
        .get(
            &picker,
            &format!("/trace/objects/sgtin:{UNIT_GTIN}:SN1/epcis"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ep["type"], "EPCISQueryDocument");
    // EPC URNs on request; the site's company prefix is in no table here, so the answer
    // says so rather than guess a split.
    let epcis = format!("/trace/objects/sgtin:{UNIT_GTIN}:SN1/epcis");
    let (s, err) = api
        .get_with(&picker, &epcis, &[("GS1-EPC-Format", "Always_EPC_URN")])
        .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("gcp_length_unknown")),
        "{err}"
    );
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("4098765000010"))
    );
    let (s, err) = api
        .get_with(&picker, &epcis, &[("GS1-EPC-Format", "urn")])
        .await;
    assert_eq!(
        (s, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_epc_format"))
    );
    let exported = ep["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // SN1's four, and those of its case and pallet while it was inside them.
    assert_eq!(exported.len(), 8);
    // The export carries SN1's lot and expiry (primer §5.1).
    let sn1 = format!("https://id.gs1.org/01/{UNIT_GTIN}/21/SN1");
    let commissioning: Vec<&Value> = exported
        .iter()
        .filter(|e| e["bizStep"] == "commissioning" && e["epcList"][0] == sn1.as_str())
        .collect();
    assert_eq!(
        commissioning
            .iter()
            .map(|e| e["ilmd"].clone())
            .collect::<Vec<_>>(),
        [json!({"cbvmda:lotNumber": "L2024A", "cbvmda:itemExpirationDate": "2027-09-30"})]
    );

    // Lot and stock (managers only).
    let (s, lot) = api
        .get(&manager, &format!("/trace/lots/L2024A?gtin={UNIT_GTIN}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{lot}");
    assert_eq!(lot["total"], 3);
    assert_eq!(
        lot["places"],
        json!([{"site_id": "site-1", "location": "PICK-01", "status": "picked", "count": 3}])
    );
    let (s, stock) = api.get(&manager, "/trace/stock?status=picked").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        stock,
        json!({"items": [{"gtin": UNIT_GTIN, "lot": "L2024A", "expiry": "2027-09-30", "status": "picked", "count": 3}], "next_cursor": null})
    );
    assert_eq!(
        api.get(&picker, "/trace/stock").await.0,
        StatusCode::FORBIDDEN
    );

    // Exceptions: the double pick, with both scans; resolve once.
    let (s, ex) = api.get(&manager, "/trace/exceptions?state=open").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ex["items"].as_array().map(Vec::len), Some(1), "{ex}");
    let e = &ex["items"][0];
    assert_eq!(
        (e["kind"].as_str(), e["scans"].clone()),
        (Some("double_pick"), json!(["pa.1", "pb.1"]))
    );
    let id = e["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        api.post(
            &picker,
            &format!("/trace/exceptions/{id}/resolve"),
            json!({"resolution": "x"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Another organisation: everything of org-a is 404, its own lists are empty.
    for path in [
        format!("/trace/objects/sgtin:{UNIT_GTIN}:SN1"),
        format!("/trace/objects/sgtin:{UNIT_GTIN}:SN1/history"),
        format!("/trace/objects/sgtin:{UNIT_GTIN}:SN1/epcis"),
        format!("/trace/containers/sscc:{PALLET}/contents"),
        "/trace/lots/L2024A".to_owned(),
        format!("/trace/exceptions/{id}"),
    ] {
        assert_eq!(
            api.get(&other, &path).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        api.post(
            &other,
            &format!("/trace/exceptions/{id}/resolve"),
            json!({"resolution": "mine now"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&other, "/trace/exceptions").await.1["items"],
        json!([])
    );
    assert_eq!(
        api.get(&other, "/trace/stock").await.1,
        json!({"items": [], "next_cursor": null})
    );

    let (s, done) = api
        .post(
            &manager,
            &format!("/trace/exceptions/{id}/resolve"),
            json!({"resolution": "ORD-B re-picked SN5"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(
        (done["state"].as_str(), done["resolved_by"].as_str()),
        (Some("resolved"), Some("m-a"))
    );
    assert_eq!(
        api.post(
            &manager,
            &format!("/trace/exceptions/{id}/resolve"),
            json!({"resolution": "again"})
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.get(&manager, "/trace/exceptions?state=open").await.1["items"],
        json!([])
    );

    // Bad identifiers and missing tokens.
    assert_eq!(
        api.get(&manager, "/trace/objects/not-a-code").await.0,
        StatusCode::BAD_REQUEST
    );
    let anon = swt_tests::http::get(format!("http://{addr}/api/v1/trace/stock")).await?;
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);

    // The OpenAPI description lists the routes.
    let doc = serde_json::to_value(&openapi)?;
    for path in [
        "/trace/objects/{id}/history",
        "/trace/containers/{id}/contents",
        "/trace/exceptions/{id}/resolve",
        "/trace/stock",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    server.abort();
    tdb.close().await
}

/// A container emptied after something was packed in it keeps its `holds` flag: the walk
/// looks inside, finds nothing and goes on, on every page size, including when the
/// empty case ends a page.
#[tokio::test]
async fn emptied_containers_in_a_walk() -> anyhow::Result<()> {
    use sea_orm::{EntityTrait, IntoActiveModel};
    use swt_server::db::entity::trace_object;
    use swt_server::trace::dto::ContentsQuery;
    use swt_server::trace::service;

    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    org_with_site(&db, "org-a", "site-1", GLN).await;
    let row = |key: &str, parent: Option<&str>, holds: bool| trace_object::Model {
        organisation_id: "org-a".into(),
        epc_key: key.into(),
        kind: "sscc".into(),
        gtin: None,
        serial: None,
        sscc: key.strip_prefix("sscc:").map(str::to_owned),
        lot: None,
        expiry: None,
        site_id: Some("site-1".into()),
        location: None,
        status: swt_server::projection::UnitStatus::Packed,
        parent_key: parent.map(str::to_owned),
        order_ref: None,
        last_event_time_ms: 0,
        last_scan_id: None,
        updated_at_ms: 0,
        holds,
    };
    // Pallet P: case A (emptied), case B (two units), case C (emptied, last).
    let (p, a, b, c) = (
        "sscc:340123450000000017",
        "sscc:340123450000000024",
        "sscc:340123450000000031",
        "sscc:340123450000000048",
    );
    let (u1, u2) = ("sscc:340123450000000055", "sscc:340123450000000062");
    let rows = vec![
        row(p, None, true),
        row(a, Some(p), true),
        row(b, Some(p), true),
        row(c, Some(p), true),
        row(u1, Some(b), false),
        row(u2, Some(b), false),
    ];
    trace_object::Entity::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
        .exec(&db)
        .await?;
    let expected = [(a, 1), (b, 1), (u1, 2), (u2, 2), (c, 1)];
    for size in 1..=6u64 {
        let (mut walked, mut cursor, mut pages) = (Vec::new(), None, 0);
        loop {
            let q = ContentsQuery {
                max_depth: None,
                limit: Some(size),
                cursor: cursor.take(),
            };
            let page = service::contents(&db, "org-a", p, &q).await?;
            pages += 1;
            walked.extend(page.items.iter().map(|e| (e.object.id.clone(), e.depth)));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
            assert!(pages <= 10, "limit {size}: no end");
        }
        let want: Vec<(String, u32)> = expected.iter().map(|(k, d)| (k.to_string(), *d)).collect();
        assert_eq!(walked, want, "limit {size}");
        // The empty case C ends the walk: no empty page after it.
        assert_eq!(
            pages,
            expected.len().div_ceil(size as usize),
            "limit {size}"
        );
    }
    // Without this the PostgreSQL run left its database behind.
    db.close().await?;
    tdb.close().await
}
