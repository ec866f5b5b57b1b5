//! Reference-data download benchmark (issue #20): a site whose organisation has 20,000
//! products, 2,000 recalled lots and 200,000 blocked serials. How long does the server
//! take to answer a scanner's first (full) download and a delta, how large are they, and
//! what does the scanner's side (parse, apply, store in memory) cost?
//!
//! ```text
//! cargo bench -p swt-server --bench reference_data -- [--products N] [--lots N] [--serials N]
//! ```
//!
//! The real server (router, middleware) runs in this process on a loopback port with a
//! fresh SQLite database in a temporary directory; requests go over HTTP like a
//! scanner's. Seeding writes through the product load and the same `touched` path the
//! recall and serial-status writers use. Prints one line per measurement, then one JSON
//! object for scripts.

// A benchmark: a failed set-up step ends the run, which is all it can do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use sea_orm::{EntityTrait, Set};
use swt_domain::api::ReferenceUpdate;
use swt_domain::gs1::mod10_check_digit;
use swt_domain::model::ReferenceData;
use swt_server::db::entity::{verification_lot, verification_serial};
use swt_server::reference::{self, Touched, products};
use swt_tests::TestServer;

const ORG: &str = swt_server::demo::ORG_ID;
const SITE: &str = swt_server::demo::SITE_IDS[0];

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn gtin(n: usize) -> String {
    let body = format!("0950600{n:06}");
    format!("{body}{}", char::from(mod10_check_digit(body.as_bytes())))
}

/// Peak resident memory of this process so far, in MB (Linux).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let n_products = arg("--products", 20_000);
    let n_lots = arg("--lots", 2_000);
    let n_serials = arg("--serials", 200_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("ref.db").display());
        let server = TestServer::start(swt_tests::test_config(&url)).await.expect("server");
        let db = server.db.clone();
        // The demo organisation: its Memphis site and manager sign-in.
        swt_server::demo::seed(&db).await.expect("demo");
        let seeding = Instant::now();
        let input: Vec<_> = (0..n_products)
            .map(|n| {
                (
                    n as u64 + 1,
                    Ok(products::ProductInput {
                        gtin: gtin(n),
                        name: format!("Product {n} 500 mg tablets"),
                        ndc: Some(format!("{:010}", 1_000_000_000 + n)),
                        serialized: true,
                        pack_size: Some("30 tablets".into()),
                    }),
                )
            })
            .collect();
        products::load(&db, ORG, &input, true).await.expect("products");
        let lots: Vec<(String, String)> =
            (0..n_lots).map(|n| (gtin(n % n_products.max(1)), format!("L{n:06}"))).collect();
        for chunk in lots.chunks(500) {
            verification_lot::Entity::insert_many(chunk.iter().map(|(g, l)| {
                verification_lot::ActiveModel {
                    organisation_id: Set(ORG.into()),
                    gtin: Set(g.clone()),
                    lot: Set(l.clone()),
                    recalled: Set(true),
                    expiry_extended_to: Set(None),
                    updated_at_ms: Set(0),
                }
            }))
            .exec(&db)
            .await
            .expect("lots");
        }
        reference::touched(&db, ORG, Touched::Lots(&lots)).await.expect("touch lots");
        // Blocked serials of 50 products, as a recall of a few products' packs looks.
        let serials: Vec<(String, String)> = (0..n_serials)
            .map(|n| (gtin(n % 50), format!("SN{n:09}")))
            .collect();
        for chunk in serials.chunks(2_000) {
            verification_serial::Entity::insert_many(chunk.iter().map(|(g, s)| {
                verification_serial::ActiveModel {
                    organisation_id: Set(ORG.into()),
                    gtin: Set(g.clone()),
                    serial: Set(s.clone()),
                    lot: Set("L000000".into()),
                    expiry: Set("301231".into()),
                    status: Set("suspect".into()),
                    source: Set("bench".into()),
                    updated_at_ms: Set(0),
                }
            }))
            .exec(&db)
            .await
            .expect("serials");
        }
        for chunk in serials.chunks(20_000) {
            reference::touched(&db, ORG, Touched::Serials(chunk)).await.expect("touch serials");
        }
        println!(
            "seeded {n_products} products, {n_lots} recalled lots, {n_serials} blocked serials in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );

        let token = swt_tests::api::login(
            &server.base_url,
            "manager",
            swt_server::demo::LOGINS[2].password,
        )
        .await
        .expect("manager");
        let http = swt_tests::http::client();
        let get = |since: Option<u64>| {
            let url = match since {
                Some(v) => server.url(&format!("/api/v1/reference/{SITE}?since={v}")),
                None => server.url(&format!("/api/v1/reference/{SITE}")),
            };
            http.get(url).bearer_auth(&token).send()
        };

        // First download: full copy, over HTTP, then parsed as the scanner parses it.
        let rss_before = peak_rss_mb();
        let mut full_ms = Vec::new();
        let mut full_bytes = 0;
        let mut parse_ms = Vec::new();
        let mut data = ReferenceData::default();
        for _ in 0..5 {
            let t = Instant::now();
            let body = get(None).await.expect("get").bytes().await.expect("body");
            full_ms.push(t.elapsed().as_secs_f64() * 1e3);
            full_bytes = body.len();
            let t = Instant::now();
            match serde_json::from_slice::<ReferenceUpdate>(&body).expect("json") {
                ReferenceUpdate::Full(d) => data = d,
                other => panic!("expected a full copy, got {:?}", other.version()),
            }
            parse_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        // The demo's dozen products come on top.
        assert!(data.products.len() >= n_products);
        // And the demo's three non-active serials.
        assert!(data.blocked_count() >= n_serials);

        // A recall entered now: the delta a scanner fetches at its next sync.
        let recalled = [(gtin(1), "NEWLOT".to_owned())];
        verification_lot::Entity::insert(verification_lot::ActiveModel {
            organisation_id: Set(ORG.into()),
            gtin: Set(recalled[0].0.clone()),
            lot: Set(recalled[0].1.clone()),
            recalled: Set(true),
            expiry_extended_to: Set(None),
            updated_at_ms: Set(0),
        })
        .exec(&db)
        .await
        .expect("lot");
        reference::touched(&db, ORG, Touched::Lots(&recalled)).await.expect("touch");
        let mut delta_ms = Vec::new();
        let mut delta_bytes = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let body = get(Some(data.version)).await.expect("get").bytes().await.expect("body");
            delta_ms.push(t.elapsed().as_secs_f64() * 1e3);
            delta_bytes = body.len();
        }
        let mut current_ms = Vec::new();
        let now_version = data.version + 1;
        for _ in 0..20 {
            let t = Instant::now();
            let _ = get(Some(now_version)).await.expect("get").bytes().await.expect("body");
            current_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (full, parse, delta, current) = (
            median(&mut full_ms),
            median(&mut parse_ms),
            median(&mut delta_ms),
            median(&mut current_ms),
        );
        let rss = peak_rss_mb();
        println!("full copy: {full_bytes} bytes, {full:.0} ms to download (median of 5), {parse:.0} ms to parse");
        println!("delta after one recall: {delta_bytes} bytes, {delta:.1} ms; unchanged: {current:.1} ms (medians of 20)");
        println!("peak RSS of server + client in this process: {rss:.0} MB (before the downloads: {rss_before:.0} MB)");
        println!(
            "{}",
            serde_json::json!({
                "products": n_products, "recalled_lots": n_lots, "blocked_serials": n_serials,
                "full_bytes": full_bytes, "full_ms": full, "parse_ms": parse,
                "delta_bytes": delta_bytes, "delta_ms": delta, "current_ms": current,
                "peak_rss_mb": rss, "rss_before_mb": rss_before,
            })
        );
        server.stop().await.expect("stop");
    });
}
