//! The manufacturer-data API over HTTP on the real router with real tokens: a serial and
//! its status, lot recall and expiry extension, EPCIS import, trading partners and
//! policies; roles; another organisation's data is 404; OpenAPI documents the routes.

use reqwest::{Method, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use swt_server::auth::Role;
use swt_server::auth::keys::{Kek, KeyRing};
use swt_server::db::entity::{organisation, verification_partner};
use swt_server::serials::import_csv::{self, CsvOptions};
use swt_server::verification::partners::key_hash;
use swt_tests::api::{Api, mint_token};
use swt_tests::{TestDb, TestServer, test_config};

const GTIN: &str = "00312345678906";

#[tokio::test]
async fn manufacturer_data_api() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    let db = server.db.clone();
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
    let csv = "gtin,serial,lot,expiry\n\
               00312345678906,S0001,LOT1,270131\n\
               00312345678906,S/0002,LOT1,270131\n\
               00312345678906,S0003,LOT2,260600\n";
    let opts = CsvOptions {
        org: "org-a".into(),
        source: "csv:api-test".into(),
        strict: true,
        commit_every: 1000,
    };
    import_csv::import(&db, std::io::Cursor::new(csv), &opts, |_| {}).await?;

    // Tokens signed by a key ring of our own: the server finds the key in the database,
    // as a second `swt serve` process would.
    let keys = KeyRing::with_kek(Kek::resolve(&test_config(tdb.url()))?);
    let manager = mint_token(&keys, &db, "m-a", "org-a", Role::Manager).await?;
    let admin = mint_token(&keys, &db, "a-a", "org-a", Role::Admin).await?;
    let clerk = mint_token(&keys, &db, "r-a", "org-a", Role::ReturnsClerk).await?;
    let other = mint_token(&keys, &db, "m-b", "org-b", Role::Manager).await?;
    let other_admin = mint_token(&keys, &db, "a-b", "org-b", Role::Admin).await?;
    let api = Api::new(&server.base_url);

    // A held serial, with a GTIN-13 in the path and a '/' in the serial.
    let (s, v) = api.get(&manager, "/serials/0312345678906/S%2F0002").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["gtin"], GTIN);
    assert_eq!(v["serial"], "S/0002");
    assert_eq!(v["lot"], "LOT1");
    assert_eq!(v["expiry"], "270131");
    assert_eq!(v["expiry_date"], "2027-01-31");
    assert_eq!(v["status"], "active");
    assert_eq!(v["lot_recalled"], false);
    assert_eq!(
        api.get(&clerk, "/serials/00312345678906/S0001").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.get(&other, "/serials/00312345678906/S0001").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&manager, "/serials/00312345678906/NOPE").await.0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = api.get(&manager, "/serials/00312345678907/S0001").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "bad check digit: {v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("check digit"),
        "{v}"
    );

    // One serial's status.
    let put = |t: &str, path: &str, body: Value| {
        let t = t.to_owned();
        let path = path.to_owned();
        let api = &api;
        async move { api.call(Method::PUT, &t, &path, Some(body)).await }
    };
    let (s, v) = put(
        &manager,
        "/serials/00312345678906/S0001/status",
        json!({"status": "suspect"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "suspect");
    assert_eq!(v["source"], "api:m-a");
    assert_eq!(
        api.get(&manager, "/serials/00312345678906/S0001").await.1["status"],
        "suspect"
    );
    for status in ["illegitimate", "decommissioned", "active"] {
        let (s, v) = put(
            &admin,
            "/serials/00312345678906/S0001/status",
            json!({"status": status}),
        )
        .await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some(status)));
    }
    let (s, v) = put(
        &manager,
        "/serials/00312345678906/S0001/status",
        json!({"status": "stolen"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "bad_request");
    assert_eq!(
        put(
            &clerk,
            "/serials/00312345678906/S0001/status",
            json!({"status": "suspect"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(
            &other,
            "/serials/00312345678906/S0001/status",
            json!({"status": "suspect"})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&manager, "/serials/00312345678906/S0001").await.1["status"],
        "active"
    );

    // A lot: recall, withdraw, expiry extension.
    let (s, v) = api.get(&manager, "/serials/lots/00312345678906/LOT1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["serials"]["total"], 2);
    assert_eq!(v["recalled"], false);
    let (s, v) = api
        .post(
            &manager,
            "/serials/lots/00312345678906/LOT1/recall",
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["recalled"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{v}"
    );
    assert_eq!(
        api.get(&manager, "/serials/00312345678906/S0001").await.1["lot_recalled"],
        true
    );
    assert_eq!(
        api.post(
            &other,
            "/serials/lots/00312345678906/LOT1/recall",
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(
            &clerk,
            "/serials/lots/00312345678906/LOT1/recall",
            json!({})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.post(
            &manager,
            "/serials/lots/00312345678906/NOLOT/recall",
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = api
        .call(
            Method::DELETE,
            &manager,
            "/serials/lots/00312345678906/LOT1/recall",
            None,
        )
        .await;
    assert_eq!((s, v["recalled"].as_bool()), (StatusCode::OK, Some(false)));

    let ext = "/serials/lots/00312345678906/LOT2/expiry-extension";
    let (s, v) = api
        .post(&manager, ext, json!({"expiry": "2026-12-31"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["expiry_extended_to"], "261231");
    let (s, v) = api.get(&manager, "/serials/00312345678906/S0003").await;
    assert_eq!(
        (s, v["lot_expiry_extended_to"].as_str()),
        (StatusCode::OK, Some("261231"))
    );
    let (s, v) = api.post(&manager, ext, json!({"expiry": "260531"})).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "earlier than printed 2026-06-30: {v}"
    );
    assert_eq!(
        api.post(&manager, ext, json!({"expiry": "261331"})).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post(&other, ext, json!({"expiry": "270101"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.post(&clerk, ext, json!({"expiry": "270101"})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = api.call(Method::DELETE, &manager, ext, None).await;
    assert_eq!(
        (s, v["expiry_extended_to"].clone()),
        (StatusCode::OK, Value::Null)
    );

    // EPCIS import: all or nothing; roles; scoped to the caller's organisation.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/serials/commissioning.jsonld"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut broken = doc.clone();
    broken["epcisBody"]["eventList"][0]["ilmd"]["cbvmda:itemExpirationDate"] = json!("2027-13-01");
    let (s, v) = api.post(&manager, "/serials/epcis", broken).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("event 1"),
        "{v}"
    );
    assert_eq!(
        api.get(&manager, "/serials/04012345111118/SN0004D").await.0,
        StatusCode::NOT_FOUND
    );
    let r = swt_tests::http::client()
        .post(server.url("/api/v1/serials/epcis"))
        .bearer_auth(&manager)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        api.post(&clerk, "/serials/epcis", doc.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = api.post(&manager, "/serials/epcis", doc.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["commissioned"].as_u64(), v["decommissioned"].as_u64()),
        (Some(4), Some(1))
    );
    let (s, v) = api.get(&manager, "/serials/04012345111118/SN0002B").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("decommissioned"))
    );
    assert_eq!(
        api.get(&other, "/serials/04012345111118/SN0004D").await.0,
        StatusCode::NOT_FOUND
    );

    // Trading partners (admins only).
    let (s, v) = api
        .post(
            &admin,
            "/verification/partners",
            json!({"gln": "0860000000024", "name": "Lakeside Pharmacy"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let key = v["key"].as_str().unwrap_or_default().to_owned();
    assert!(key.starts_with("swtp_") && key.len() == 48, "{key}");
    assert_eq!(v["status"], "active");
    let stored = verification_partner::Entity::find().all(&db).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].key_hash, key_hash(&key), "only the hash is kept");
    assert_eq!(stored[0].organisation_id, "org-a");
    let (s, v) = api.get(&admin, "/verification/partners").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert!(
        v[0].get("key").is_none() && v[0].get("key_hash").is_none(),
        "{v}"
    );
    assert_eq!(
        api.post(
            &admin,
            "/verification/partners",
            json!({"gln": "0860000000024", "name": "Again"})
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.post(
            &admin,
            "/verification/partners",
            json!({"gln": "0860000000025", "name": "Typo"})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.get(&manager, "/verification/partners").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.post(
            &manager,
            "/verification/partners",
            json!({"gln": "0860000000017", "name": "X"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = api
        .post(
            &admin,
            "/verification/partners/0860000000024/suspend",
            json!({}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("suspended"))
    );
    assert_eq!(
        api.post(
            &other_admin,
            "/verification/partners/0860000000024/activate",
            json!({})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get(&other_admin, "/verification/partners").await.1,
        json!([])
    );
    let (s, v) = api
        .post(
            &admin,
            "/verification/partners/0860000000024/activate",
            json!({}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("active")));

    // Policies (admins only).
    let (s, v) = api
        .post(
            &admin,
            "/verification/policies",
            json!({"gtin_prefix": "0312345", "manufacturer": "Acme Pharma"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["on_recalled"].as_str(),
            v["on_expired"].as_str(),
            v["on_suspect"].as_str()
        ),
        (Some("verified"), Some("verified"), Some("verified"))
    );
    let (s, v) = api
        .post(
            &admin,
            "/verification/policies",
            json!({"gtin_prefix": "0312345", "manufacturer": "Acme Pharma",
                   "on_recalled": "manufacturer_policy", "on_suspect": "not_for_redistribution"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["on_recalled"], "manufacturer_policy");
    assert_eq!(v["on_suspect"], "not_for_redistribution");
    assert_eq!(
        api.post(
            &admin,
            "/verification/policies",
            json!({"gtin_prefix": "03X", "manufacturer": "A"})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post(
            &admin,
            "/verification/policies",
            json!({"gtin_prefix": "03", "manufacturer": "A", "on_expired": "maybe"})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.get(&manager, "/verification/policies").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, v) = api.get(&admin, "/verification/policies").await;
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(
        api.get(&other_admin, "/verification/policies").await.1,
        json!([])
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &other_admin,
            "/verification/policies/0312345",
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call(
            Method::DELETE,
            &admin,
            "/verification/policies/0312345",
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get(&admin, "/verification/policies").await.1, json!([]));

    // The routes are in the OpenAPI document.
    let spec: Value = swt_tests::http::get(format!("{}/openapi.json", server.base_url))
        .await?
        .json()
        .await?;
    for path in [
        "/api/v1/serials/{gtin}/{serial}",
        "/api/v1/serials/{gtin}/{serial}/status",
        "/api/v1/serials/lots/{gtin}/{lot}/recall",
        "/api/v1/serials/lots/{gtin}/{lot}/expiry-extension",
        "/api/v1/serials/epcis",
        "/api/v1/verification/partners",
        "/api/v1/verification/policies",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} documented");
    }

    server.stop().await?;
    tdb.close().await?;
    Ok(())
}
