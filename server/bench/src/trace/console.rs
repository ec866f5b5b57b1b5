//! The console's pages on the trace benchmark's database (issue #23: every page's server
//! time p95 ≤ 100 ms with 10 million events stored). A manager signs in through the
//! console's own form (cookies, CSRF token), then each page is asked for one request at a
//! time with random subjects from the load: a pack, a pallet, a lot, a GTIN, a scanned
//! DataMatrix for the search box. Each answer must be the page (200) or, for the search
//! box, the redirect to the pack; the time is the whole request on loopback.

use std::time::Instant;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;
use swt_server::auth::Role;
use swt_server::auth::service as auth;
use swt_server::db::entity::{app_user, trace_object};

use super::BenchError;
use super::run::{Latency, latency};
use super::warehouse::ORG;

const USER: &str = "bench-console-manager";
const PASSWORD: &str = "bench-console-password";

/// One page's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PageReport {
    /// The page, as a pattern.
    pub page: String,
    /// Whole requests over HTTP on loopback.
    pub http: Latency,
    /// Mean answer size, bytes.
    pub mean_bytes: usize,
}

/// A browser's session: its cookies.
struct Session {
    agent: ureq::Agent,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Session {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &ureq::http::HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("");
            if let Some((k, val)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                if !val.is_empty() {
                    self.cookies.push((k.to_owned(), val.to_owned()));
                }
            }
        }
    }

    /// `(status, body)`; redirects are not followed.
    fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), BenchError> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .call()
            .map_err(|e| err(path, e))?;
        self.keep(resp.headers());
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| err(path, e))?;
        Ok((status, body))
    }

    fn sign_in(&mut self) -> Result<(), BenchError> {
        self.get("/login")?;
        let csrf = self
            .cookies
            .iter()
            .find(|(k, _)| k == "swt_csrf")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| err("/login", "no CSRF cookie"))?;
        let form = format!("csrf={csrf}&username={USER}&password={PASSWORD}&next=%2F");
        let resp = self
            .agent
            .post(format!("{}/login", self.base))
            .header("Cookie", &self.cookie_header())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Sec-Fetch-Site", "same-origin")
            .send(form.as_bytes())
            .map_err(|e| err("/login", e))?;
        self.keep(resp.headers());
        match resp.status().as_u16() {
            303 if self.cookies.iter().any(|(k, _)| k == "swt_session") => Ok(()),
            s => Err(err("/login", format!("sign-in answered {s}"))),
        }
    }
}

fn err(path: &str, why: impl std::fmt::Display) -> BenchError {
    BenchError::Request {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// A manager who signs in with a password (the load has none).
async fn ensure_user(db: &DatabaseConnection) -> Result<(), BenchError> {
    let exists = app_user::Entity::find()
        .filter(app_user::Column::Username.eq(USER))
        .one(db)
        .await
        .map_err(|e| BenchError::Db(e.to_string()))?;
    if exists.is_none() {
        auth::add_user(
            db,
            ORG,
            None,
            USER,
            "Bench manager",
            Role::Manager,
            PASSWORD,
        )
        .await
        .map_err(|e| BenchError::Setup(format!("console user: {e}")))?;
    }
    Ok(())
}

/// The subjects of the pages: packs as (GTIN, serial, lot) and pallets' SSCCs, from the
/// keys the trace benchmark drew at random from the load.
async fn subjects(
    db: &DatabaseConnection,
    pack_keys: &[String],
    pallet_keys: &[String],
) -> Result<(Vec<(String, String, String)>, Vec<String>), BenchError> {
    let mut packs = Vec::with_capacity(pack_keys.len());
    for key in pack_keys {
        let lot: Option<Option<String>> = trace_object::Entity::find()
            .select_only()
            .column(trace_object::Column::Lot)
            .filter(trace_object::Column::OrganisationId.eq(ORG))
            .filter(trace_object::Column::EpcKey.eq(key.as_str()))
            .into_tuple()
            .one(db)
            .await
            .map_err(|e| BenchError::Db(e.to_string()))?;
        let parts = key.strip_prefix("sgtin:").and_then(|k| k.split_once(':'));
        if let (Some((g, s)), Some(Some(l))) = (parts, lot) {
            packs.push((g.to_owned(), s.to_owned(), l));
        }
    }
    let pallets: Vec<String> = pallet_keys
        .iter()
        .filter_map(|k| k.strip_prefix("sscc:"))
        .map(str::to_owned)
        .collect();
    if packs.is_empty() || pallets.is_empty() {
        return Err(BenchError::Setup(
            "the load holds no pack with a lot or no pallet".into(),
        ));
    }
    Ok((packs, pallets))
}

/// Times every console page `n` times (after `warmup` unmeasured requests each).
pub async fn run(
    db: &DatabaseConnection,
    base: String,
    pack_keys: &[String],
    pallet_keys: &[String],
    n: usize,
    warmup: usize,
    progress: bool,
) -> Result<Vec<PageReport>, BenchError> {
    ensure_user(db).await?;
    let (packs, pallets) = subjects(db, pack_keys, pallet_keys).await?;
    tokio::task::spawn_blocking(move || {
        let mut s = Session {
            agent: crate::http_agent_no_redirects(),
            base,
            cookies: Vec::new(),
        };
        s.sign_in()?;
        let pct = |t: &str| -> String {
            percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        type PathOf = Box<dyn Fn(usize) -> String>;
        let (p, c) = (packs.clone(), pallets.clone());
        let pick = move |i: usize| p[i % p.len()].clone();
        let pallet = move |i: usize| c[i % c.len().max(1)].clone();
        let pages: Vec<(&str, u16, PathOf)> = vec![
            ("/ (overview)", 200, Box::new(|_| "/".to_owned())),
            ("/stock", 200, Box::new(|_| "/stock".to_owned())),
            ("/stock?gtin=", 200, {
                let pick = pick.clone();
                Box::new(move |i| format!("/stock?gtin={}", pick(i).0))
            }),
            ("/search?q=<DataMatrix>", 303, {
                let pick = pick.clone();
                Box::new(move |i| {
                    let (g, s, l) = pick(i);
                    format!("/search?q={}", pct(&format!("]d201{g}10{l}\u{1d}21{s}")))
                })
            }),
            ("/search?q=<serial>", 303, {
                let pick = pick.clone();
                Box::new(move |i| format!("/search?q={}", pick(i).1))
            }),
            ("/units/{pack}", 200, {
                let pick = pick.clone();
                Box::new(move |i| {
                    let (g, s, _) = pick(i);
                    format!("/units/sgtin:{g}:{s}")
                })
            }),
            ("/units/{pack}/report", 200, {
                let pick = pick.clone();
                Box::new(move |i| {
                    let (g, s, _) = pick(i);
                    format!("/units/sgtin:{g}:{s}/report")
                })
            }),
            ("/units/{pallet}", 200, {
                let pallet = pallet.clone();
                Box::new(move |i| format!("/units/sscc:{}", pallet(i)))
            }),
            ("/containers/{pallet}", 200, {
                let pallet = pallet.clone();
                Box::new(move |i| format!("/containers/{}", pallet(i)))
            }),
            ("/lots/{gtin}/{lot}", 200, {
                let pick = pick.clone();
                Box::new(move |i| {
                    let (g, _, l) = pick(i);
                    format!("/lots/{g}/{}", pct(&l))
                })
            }),
            ("/exceptions", 200, Box::new(|_| "/exceptions".to_owned())),
            ("/returns", 200, Box::new(|_| "/returns".to_owned())),
            ("/tasks", 200, Box::new(|_| "/tasks".to_owned())),
            ("/devices", 200, Box::new(|_| "/devices".to_owned())),
        ];
        let mut out = Vec::new();
        for (name, want, path_of) in pages {
            let (mut ms, mut bytes) = (Vec::with_capacity(n), 0usize);
            for i in 0..n + warmup {
                let path = path_of(i);
                let t = Instant::now();
                let (status, body) = s.get(&path)?;
                let took = t.elapsed().as_secs_f64() * 1e3;
                if status != want {
                    return Err(err(
                        &path,
                        format!(
                            "answered {status}, expected {want}: {}",
                            String::from_utf8_lossy(&body)
                                .chars()
                                .take(300)
                                .collect::<String>()
                        ),
                    ));
                }
                if i >= warmup {
                    ms.push(took);
                    bytes += body.len();
                }
            }
            if progress {
                eprintln!("bench: console {name}: {n} requests");
            }
            out.push(PageReport {
                page: name.to_owned(),
                mean_bytes: bytes / n.max(1),
                http: latency(ms),
            });
        }
        Ok(out)
    })
    .await
    .map_err(|e| BenchError::Setup(format!("client thread: {e}")))?
}
