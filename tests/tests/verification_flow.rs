//! Returns verification over the GS1 Lightweight Messaging Standard, on both back-ends:
//! a real `swt` server answers as a manufacturer's responder (every failure reason and
//! additional-information value, every refusal status), and a second one asks it as a
//! requester — also against a slow, a failing and a down peer.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use serde_json::Value;
use swt_server::config::{Config, VerificationRoute};
use swt_server::db::entity::verification_exchange;
use swt_server::verification::lms::{self, Context, ProductId, VerifyRequest};
use swt_server::verification::requester::{Asked, Requester};
use swt_tests::lms::*;
use swt_tests::{TestDb, TestServer, test_config};

fn query(exp: &str) -> String {
    format!(
        "exp={exp}&linkType=verificationService&context=dscsaSaleableReturn&reqGLN={REQ_GLN}\
         &corrUUID={CORR}&ctrlPossessAtt=true&email=returns%40wholesaler.example"
    )
}

async fn get(url: &str, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
    let mut rq = swt_tests::http::client()
        .get(url)
        .header("GS1US-Version", "1.3.0")
        .header("Accept", "application/json");
    if let Some(k) = key {
        rq = rq.bearer_auth(k);
    }
    let resp = rq.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn verify(
    server: &TestServer,
    gtin: &str,
    lot: &str,
    ser: &str,
    exp: &str,
) -> anyhow::Result<(u16, Value)> {
    get(
        &server.url(&format!(
            "/verify/gtin/{gtin}/lot/{lot}/ser/{ser}?{}",
            query(exp)
        )),
        Some(KEY),
    )
    .await
}

/// (verified, failure reason, additional info).
type Answer<'a> = (bool, Option<&'a str>, Option<&'a str>);

/// The answer of a 200 body.
fn data(body: &Value) -> Answer<'_> {
    let d = &body["data"];
    (
        d["verified"].as_bool().expect("data.verified"),
        d["verificationFailureReason"].as_str(),
        d["additionalInfo"].as_str(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_answers_every_reason_and_status() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    seed(&server.db).await?;

    // A match: exactly the LMS shape, corrUUID echoed at the top level.
    let (status, body) = verify(&server, GTIN, "LOT42", "OK1", "300131").await?;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{body}");
    for k in ["verificationTimestamp", "responderGLN", "data", "corrUUID"] {
        assert!(keys.contains(&k), "{k} missing in {body}");
    }
    assert_eq!(body["responderGLN"], MFR_GLN);
    assert_eq!(body["corrUUID"], CORR);
    let ts = body["verificationTimestamp"].as_str().unwrap();
    assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
    assert_eq!(data(&body), (true, None, None));
    assert_eq!(
        body["data"].as_object().unwrap().len(),
        1,
        "only verified: {body}"
    );

    let cases: &[(&str, &str, &str, &str, Answer)] = &[
        (
            GTIN,
            "LOT42",
            "NOPE",
            "300131",
            (false, Some("No_match_GTIN_Serial"), None),
        ),
        (
            GTIN,
            "LOT41",
            "OK1",
            "300131",
            (false, Some("No_match_GTIN_Serial_Lot"), None),
        ),
        (
            GTIN,
            "LOT42",
            "OK1",
            "300130",
            (false, Some("No_match_GTIN_Serial_Expiry"), None),
        ),
        (
            GTIN,
            "LOT41",
            "OK1",
            "300130",
            (false, Some("No_match_GTIN_Serial_Lot_Expiry"), None),
        ),
        (
            GTIN,
            "LOT42",
            "DEC1",
            "300131",
            (false, Some("Not_for_re-distribution"), None),
        ),
        (
            GTIN,
            "LOT42",
            "ILL1",
            "300131",
            (false, Some("Not_for_re-distribution"), Some("Illegitimate")),
        ),
        // Default policy: verified with the information.
        (
            GTIN,
            "LOT42",
            "SUS1",
            "300131",
            (true, None, Some("Suspect")),
        ),
        (
            GTIN,
            "LOTR",
            "REC1",
            "300131",
            (true, None, Some("Recalled")),
        ),
        (
            GTIN,
            "LOTE",
            "EXP1",
            "250100",
            (true, None, Some("Expired")),
        ),
        (
            GTIN,
            "LOTX",
            "EXT1",
            "250100",
            (true, None, Some("ExpirationExtended")),
        ),
        // The strict manufacturer's policy (longest prefix): verified false, and no
        // detail about which element did not match.
        (
            STRICT_GTIN,
            "LOTX",
            "REC2",
            "300131",
            (false, Some("No_reason_provided"), None),
        ),
        (
            STRICT_GTIN,
            "LOTR2",
            "NOPE",
            "300131",
            (false, Some("No_reason_provided"), None),
        ),
        // The strict manufacturer's policy (longest prefix): verified false.
        (
            STRICT_GTIN,
            "LOTR2",
            "REC2",
            "300131",
            (false, Some("Manufacturer_policy"), Some("Recalled")),
        ),
        (
            STRICT_GTIN,
            "LOTE2",
            "EXP2",
            "250100",
            (false, Some("Manufacturer_policy"), Some("Expired")),
        ),
        (
            STRICT_GTIN,
            "LOTS2",
            "SUS2",
            "300131",
            (false, Some("Not_for_re-distribution"), Some("Suspect")),
        ),
    ];
    for (gtin, lot, ser, exp, want) in cases {
        let (status, body) = verify(&server, gtin, lot, ser, exp).await?;
        assert_eq!(status, 200, "{ser}: {body}");
        assert_eq!(data(&body), *want, "{gtin} {lot} {ser} {exp}: {body}");
    }

    // The numeric-AI Digital Link form and gs1: prefixed linkType are tolerated.
    let q = query("300131").replace("exp=", "17=").replace(
        "linkType=verificationService",
        "linkType=gs1:verificationService",
    );
    let (status, body) = get(
        &server.url(&format!("/verify/01/{GTIN}/10/LOT42/21/OK1?{q}")),
        Some(KEY),
    )
    .await?;
    assert_eq!((status, data(&body)), (200, (true, None, None)), "{body}");

    // Refusals: status codes as the guideline lists them, with a reason in the body.
    let ok_path = format!("/verify/gtin/{GTIN}/lot/LOT42/ser/OK1?{}", query("300131"));
    let refusals: Vec<(String, Option<&str>, u16, &str)> = vec![
        (ok_path.clone(), None, 401, "unauthenticated"),
        (ok_path.clone(), Some("swtp_wrong"), 401, "unauthenticated"),
        (
            ok_path.replace(REQ_GLN, OTHER_GLN),
            Some(KEY),
            403,
            "req_gln_not_permitted",
        ),
        (
            ok_path.replace(REQ_GLN, OTHER_GLN),
            Some(SUSPENDED_KEY),
            403,
            "partner_suspended",
        ),
        (
            ok_path.replace("00312345678906", "00312345678907"),
            Some(KEY),
            400,
            "bad_gtin",
        ),
        (
            ok_path.replace("exp=300131", "exp=301331"),
            Some(KEY),
            400,
            "bad_expiry",
        ),
        (
            ok_path.replace("exp=300131&", ""),
            Some(KEY),
            400,
            "missing_expiry",
        ),
        (
            ok_path.replace("/ser/OK1", ""),
            Some(KEY),
            400,
            "missing_serial",
        ),
        (
            ok_path.replace("linkType=verificationService", "linkType=gs1:pip"),
            Some(KEY),
            400,
            "bad_link_type",
        ),
        (
            ok_path.replace(&format!("reqGLN={REQ_GLN}"), "reqGLN=0614141000006"),
            Some(KEY),
            400,
            "bad_req_gln",
        ),
        (
            ok_path.replace(&format!("corrUUID={CORR}"), "corrUUID=x"),
            Some(KEY),
            400,
            "bad_corr_uuid",
        ),
        (
            ok_path.replace("00312345678906", "00614141999996"),
            Some(KEY),
            404,
            "unknown_gtin",
        ),
    ];
    for (path, key, want_status, want_code) in &refusals {
        let (status, body) = get(&server.url(path), *key).await?;
        assert_eq!(
            (status, body["code"].as_str()),
            (*want_status, Some(*want_code)),
            "{path}: {body}"
        );
        assert!(
            body.get("data").is_none(),
            "only 200 carries the LMS body: {body}"
        );
    }
    let post = swt_tests::http::client()
        .post(server.url(&ok_path))
        .bearer_auth(KEY)
        .send()
        .await?;
    assert_eq!(post.status().as_u16(), 405);

    // checkConnectivity.
    let c = format!(
        "/verify/checkConnectivity?gtin={GTIN}&reqGLN={REQ_GLN}&context=dscsaSaleableReturn"
    );
    let (status, body) = get(&server.url(&c), Some(KEY)).await?;
    assert_eq!(
        (status, body.clone()),
        (200, serde_json::json!({"responderGLN": MFR_GLN}))
    );
    assert_eq!(get(&server.url(&c), None).await?.0, 401);
    assert_eq!(
        get(&server.url(&c.replace(REQ_GLN, OTHER_GLN)), Some(KEY))
            .await?
            .0,
        403
    );
    assert_eq!(
        get(
            &server.url(&c.replace("gtin=00312345678906&", "")),
            Some(KEY)
        )
        .await?
        .0,
        400
    );

    // Every request above is in the audit log with its status (the POST never reached us).
    let answered = 1 + cases.len() as u64 + 1 + refusals.len() as u64 + 4;
    let logged = verification_exchange::Entity::find()
        .count(&server.db)
        .await?;
    assert_eq!(logged, answered);
    let rows = verification_exchange::Entity::find()
        .all(&server.db)
        .await?;
    assert!(
        rows.iter().all(|r| r.direction == "inbound"
            && r.http_status.is_some()
            && r.response_body.is_some())
    );
    let susp = rows
        .iter()
        .find(|r| r.serial.as_deref() == Some("SUS1"))
        .expect("SUS1 logged");
    assert_eq!(
        (
            susp.verified,
            susp.additional_info.as_deref(),
            susp.requestor_gln.as_deref()
        ),
        (Some(true), Some("Suspect"), Some(REQ_GLN))
    );

    server.stop().await?;
    tdb.close().await
}

fn request(gtin: &str, lot: &str, ser: &str, exp: &str) -> VerifyRequest {
    VerifyRequest {
        id: ProductId::new(gtin, lot, ser, exp).expect("valid identifier"),
        context: Context::SaleableReturn,
        req_gln: swt_core::gs1::Gln::parse(REQ_GLN).expect("gln"),
        corr_uuid: uuid::Uuid::new_v4().to_string(),
        ctrl_possess_att: Some(true),
        email: None,
        telephone: None,
    }
}

fn requester_config(url: &str) -> Config {
    let mut c = Config::default();
    c.verification.routes = vec![VerificationRoute {
        gtin_prefix: "003".into(),
        url: url.to_owned(),
        api_key: Some(KEY.into()),
    }];
    c.verification.peer_timeout_ms = 300;
    c.verification.peer_retries = 2;
    c.verification.breaker_failures = 5;
    c.verification.breaker_cooldown_secs = 60;
    c
}

async fn outbound(db: &DatabaseConnection) -> anyhow::Result<Vec<verification_exchange::Model>> {
    Ok(verification_exchange::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|r| r.direction == "outbound")
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_asks_a_real_responder_and_caches_only_positive_answers() -> anyhow::Result<()> {
    let mfr_db = TestDb::new().await?;
    let mfr = TestServer::start(test_config(mfr_db.url())).await?;
    seed(&mfr.db).await?;
    let ws_db = TestDb::new().await?;
    let ws = TestServer::start(test_config(ws_db.url())).await?;
    let cfg = requester_config(&mfr.url("/verify"));
    let requester = Requester::new(&cfg.verification);

    let inbound = || async { verification_exchange::Entity::find().count(&mfr.db).await };
    let asked = requester
        .ask(
            &ws.db,
            &request(GTIN, "LOT42", "OK1", "300131"),
            "org-ws",
            Some("scan-1"),
        )
        .await?;
    let Asked::Answer { answer, cached, .. } = asked else {
        panic!("{asked:?}")
    };
    assert!(answer.verified && !cached);
    assert_eq!(answer.responder_gln.as_deref(), Some(MFR_GLN));
    assert_eq!(inbound().await?, 1);
    // Asked again: the positive answer is reused, the responder is not called.
    let again = requester
        .ask(
            &ws.db,
            &request(GTIN, "LOT42", "OK1", "300131"),
            "org-ws",
            None,
        )
        .await?;
    assert!(
        matches!(again, Asked::Answer { cached: true, .. }),
        "{again:?}"
    );
    assert_eq!(inbound().await?, 1);
    // Negative (and "verified with information") answers are asked afresh every time.
    for _ in 0..2 {
        let a = requester
            .ask(
                &ws.db,
                &request(GTIN, "LOT42", "NOPE", "300131"),
                "org-ws",
                None,
            )
            .await?;
        assert!(
            matches!(&a, Asked::Answer { answer, cached: false, .. } if !answer.verified),
            "{a:?}"
        );
        let a = requester
            .ask(
                &ws.db,
                &request(GTIN, "LOTR", "REC1", "300131"),
                "org-ws",
                None,
            )
            .await?;
        assert!(
            matches!(&a, Asked::Answer { answer, cached: false, .. } if answer.additional_info.as_deref() == Some("Recalled")),
            "{a:?}"
        );
    }
    assert_eq!(inbound().await?, 5);
    // A GTIN the responder does not know: a final 404, not retried.
    let a = requester
        .ask(
            &ws.db,
            &request("00312345000011", "L", "S", "300131"),
            "org-ws",
            None,
        )
        .await?;
    assert!(matches!(a, Asked::Refused { status: 404, .. }), "{a:?}");
    assert_eq!(inbound().await?, 6);
    // No route for the GTIN.
    let a = requester
        .ask(
            &ws.db,
            &request("00614141000012", "L", "S", "300131"),
            "org-ws",
            None,
        )
        .await?;
    assert_eq!(a, Asked::NoRoute);

    // The wholesaler's audit log holds every outbound exchange with what came back.
    let out = outbound(&ws.db).await?;
    assert_eq!(out.len(), 6);
    let first = &out[0];
    assert_eq!(
        (first.http_status, first.verified, first.scan_id.as_deref()),
        (Some(200), Some(true), Some("scan-1"))
    );
    assert!(first.request.starts_with(&format!("/gtin/{GTIN}/lot/LOT42/ser/OK1?exp=300131&linkType=verificationService&context=dscsaSaleableReturn&reqGLN={REQ_GLN}&corrUUID=")), "{}", first.request);

    ws.stop().await?;
    mfr.stop().await?;
    ws_db.close().await?;
    mfr_db.close().await
}

/// A peer that answers every request after `delay` with `status` and `body`.
async fn fake_peer(delay: Duration, status: u16, body: &'static str) -> anyhow::Result<String> {
    use axum::routing::get;
    let app = axum::Router::new().fallback(get(move || async move {
        tokio::time::sleep(delay).await;
        (
            axum::http::StatusCode::from_u16(status).expect("status"),
            body,
        )
    }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(format!("http://{addr}/verify"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_survives_slow_failing_and_down_peers() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let ws = TestServer::start(test_config(tdb.url())).await?;
    let req = request(GTIN, "LOT42", "OK1", "300131");

    // Slow: every attempt times out (300 ms), 1 + 2 retries, then "unavailable".
    let slow = fake_peer(Duration::from_secs(5), 200, "{}").await?;
    let r = Requester::new(&requester_config(&slow).verification);
    let a = r.ask(&ws.db, &req, "org-ws", Some("scan-slow")).await?;
    assert!(
        matches!(&a, Asked::Unavailable { error, .. } if error.to_lowercase().contains("time")),
        "{a:?}"
    );
    // Bounded by behaviour, not by a clock: exactly three attempts, each cut off by the
    // timeout rather than answered by the peer.
    let logged = outbound(&ws.db).await?;
    let slow: Vec<_> = logged
        .iter()
        .filter(|e| e.scan_id.as_deref() == Some("scan-slow"))
        .collect();
    assert_eq!(slow.len(), 3, "{slow:?}");
    assert!(
        slow.iter().all(|e| e.http_status.is_none()
            && e.error
                .as_deref()
                .is_some_and(|m| m.to_lowercase().contains("time"))),
        "{slow:?}"
    );

    // Failing: 503 three times per request; after five failures the circuit opens and
    // the next request fails fast without calling the peer.
    let failing = fake_peer(Duration::ZERO, 503, "busy").await?;
    let r = Requester::new(&requester_config(&failing).verification);
    let a = r.ask(&ws.db, &req, "org-ws", None).await?;
    assert!(
        matches!(&a, Asked::Unavailable { error, .. } if error.contains("503")),
        "{a:?}"
    );
    assert!(!r.circuit_open(&failing));
    let _ = r.ask(&ws.db, &req, "org-ws", None).await?;
    assert!(r.circuit_open(&failing));
    let before = outbound(&ws.db).await?.len();
    let a = r.ask(&ws.db, &req, "org-ws", None).await?;
    assert!(
        matches!(&a, Asked::Unavailable { error, .. } if error.contains("circuit open")),
        "{a:?}"
    );
    let after = outbound(&ws.db).await?;
    assert_eq!(after.len(), before + 1, "the fast failure is logged too");
    assert_eq!(after.last().and_then(|e| e.http_status), None);

    // Garbled 200 (not the LMS shape): never taken as an answer.
    let garbled = fake_peer(Duration::ZERO, 200, "<html>proxy error</html>").await?;
    let r = Requester::new(&requester_config(&garbled).verification);
    let a = r.ask(&ws.db, &req, "org-ws", None).await?;
    assert!(
        matches!(&a, Asked::Unavailable { error, .. } if error.contains("not JSON")),
        "{a:?}"
    );

    // Down: nothing listens on the port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let r =
        Requester::new(&requester_config(&format!("http://127.0.0.1:{port}/verify")).verification);
    let a = r.ask(&ws.db, &req, "org-ws", None).await?;
    assert!(matches!(a, Asked::Unavailable { .. }), "{a:?}");

    // Old responders send `recalled` in lower case and put corrUUID where they like: read
    // leniently, and "verified" with information is never a plain yes.
    let old = fake_peer(
        Duration::ZERO,
        200,
        r#"{"data":{"verified":true,"additionalInfo":"recalled"}}"#,
    )
    .await?;
    let r = Requester::new(&requester_config(&old).verification);
    let a = r.ask(&ws.db, &req, "org-ws", None).await?;
    let Asked::Answer { answer, .. } = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        lms::ReturnDecision::of(answer.verified, answer.additional_info.as_deref()),
        lms::ReturnDecision::Review
    );

    ws.stop().await?;
    tdb.close().await
}
