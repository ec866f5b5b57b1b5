//! The manager's console (issue #23) as a browser uses it, on both back-ends: sign-in
//! and its refusals, the session cookies and their protections (HttpOnly, SameSite,
//! CSRF, origin, CSP, open redirects), organisation scoping and roles, the search box on
//! scanned codes, a pack's history, a container's tree, a lot's recall impact with its
//! CSV and EPCIS downloads, the exceptions queue (assign, comment, resolve, with the
//! audit), scanners (disable), and hostile input that must change nothing.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use swt_server::db::entity::{app_user, device, exception_note, refresh_token, trace_exception};
use swt_server::demo;
use swt_tests::api::{self, Scanner};
use swt_tests::projected;
use swt_tests::{TestDb, TestServer, test_config};

const GTIN: &str = "00361500231012";
const SITE: &str = "0614141000012";

/// A browser: keeps cookies, follows no redirect (the test looks at each), sends the
/// headers a same-origin form post carries.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl Browser {
    fn new(base: &str) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.to_owned(),
            client: swt_tests::http::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            cookies: HashMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, resp: reqwest::Response) -> anyhow::Result<Answer> {
        let status = resp.status();
        let headers = resp.headers().clone();
        for c in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let pair = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let body = resp.text().await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await?;
        self.keep(resp).await
    }

    fn csrf(&self) -> String {
        self.cookies.get("swt_csrf").cloned().unwrap_or_default()
    }

    /// A form post from one of our pages (the CSRF token echoed, same origin).
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[("sec-fetch-site", "same-origin")])
            .await
    }

    async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await?;
        self.keep(resp).await
    }

    async fn sign_in(&mut self, user: &str, password: &str) -> anyhow::Result<Answer> {
        self.get("/login").await?;
        self.post(
            "/login",
            &[("username", user), ("password", password), ("next", "/")],
        )
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

fn password(role: usize) -> &'static str {
    demo::LOGINS[role].password
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_and_their_protections() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();

    // No session: every page goes to the sign-in page and comes back afterwards.
    let mut b = Browser::new(&base)?;
    let a = b.get("/stock?gtin=1").await?;
    assert_eq!(a.status, 303);
    assert_eq!(a.location(), "/login?next=%2Fstock%3Fgtin%3D1");
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
    ] {
        assert!(a.headers.contains_key(h), "{h} on every console answer");
    }
    let csp = a.headers["content-security-policy"].to_str()?;
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    let csrf_cookie = a.set_cookie("swt_csrf").unwrap_or_default();
    let login = b.get("/login?next=/stock").await?;
    assert_eq!(login.status, 200);
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"),
        "{csrf_cookie}"
    );
    assert!(login.body.contains(&format!("value=\"{}\"", b.csrf())));

    // A form without the token, or from another site, is refused and signs nobody in.
    let no_token = b
        .post_raw(
            "/login",
            &[("username", "manager"), ("password", password(2))],
            &[],
        )
        .await?;
    assert_eq!(no_token.status, 403);
    assert!(no_token.set_cookie("swt_session").is_none());
    let csrf = b.csrf();
    let cross = b
        .post_raw(
            "/login",
            &[
                ("csrf", csrf.as_str()),
                ("username", "manager"),
                ("password", password(2)),
            ],
            &[("origin", "https://evil.example")],
        )
        .await?;
    assert_eq!(cross.status, 403, "a cross-site post");
    assert!(cross.set_cookie("swt_session").is_none());

    // Wrong password: the form again, with the reason, and no session.
    let wrong = b
        .post("/login", &[("username", "manager"), ("password", "nope")])
        .await?;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong user name or password"));
    assert!(!b.cookies.contains_key("swt_session"));

    // A picker is refused, and the session the sign-in opened is ended at once.
    let picker = b.sign_in("picker", password(0)).await?;
    assert_eq!(picker.status, 403);
    assert!(picker.body.contains("managers and administrators"));
    assert!(!b.cookies.contains_key("swt_session"));
    let live = refresh_token::Entity::find()
        .filter(refresh_token::Column::RevokedAt.is_null())
        .count(&server.db)
        .await?;
    assert_eq!(live, 0, "the picker's console session was revoked");

    // A manager signs in: HttpOnly, SameSite session cookies; an open redirect is refused.
    b.get("/login").await?;
    let ok = b
        .post(
            "/login",
            &[
                ("username", "manager"),
                ("password", password(2)),
                ("next", "//evil.example/x"),
            ],
        )
        .await?;
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location(), "/", "never to another host");
    let session = ok.set_cookie("swt_session").unwrap_or_default();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    for page in [
        "/",
        "/stock",
        "/exceptions",
        "/devices",
        "/tasks",
        "/returns",
    ] {
        let a = b.get(page).await?;
        assert_eq!(a.status, 200, "{page}: {}", a.body);
        assert!(a.body.contains("Manager") || a.body.contains("manager"));
    }
    assert_eq!(b.get("/admin").await?.status, 403, "admins only");

    // An expired or forged access cookie with a good refresh cookie renews the session.
    b.cookies.insert("swt_session".into(), "forged".into());
    let renewed = b.get("/stock").await?;
    assert_eq!(renewed.status, 200);
    assert!(renewed.set_cookie("swt_session").is_some());
    assert_ne!(
        b.cookies.get("swt_session").map(String::as_str),
        Some("forged")
    );

    // Signing out ends the session on the server: the old cookies are worth nothing.
    let kept = b.cookies.clone();
    let out = b.post("/logout", &[]).await?;
    assert_eq!(out.status, 303);
    let mut replay = Browser::new(&base)?;
    replay.cookies = kept;
    assert_eq!(
        replay.get("/").await?.status,
        303,
        "revoked session refused"
    );

    // The admin sees users and partners; JSON errors of the API stay JSON.
    let mut admin = Browser::new(&base)?;
    assert_eq!(admin.sign_in("admin", password(3)).await?.status, 303);
    let page = admin.get("/admin").await?;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("picker") && page.body.contains("Trading partners"));

    // Admins add and disable users. Bad forms are refused and add nobody.
    let users = || app_user::Entity::find().count(&server.db);
    let before = users().await?;
    let pw = "a long first password";
    for (fields, status) in [
        (
            vec![
                ("username", "clara"),
                ("display_name", "Clara"),
                ("role", "manager"),
                ("password", "short"),
            ],
            400,
        ),
        (
            vec![
                ("username", "clara"),
                ("display_name", "Clara"),
                ("role", "root"),
                ("password", pw),
            ],
            400,
        ),
        (
            vec![
                ("username", "clara"),
                ("display_name", "Clara"),
                ("role", "picker"),
                ("password", pw),
            ],
            400,
        ),
        (
            vec![
                ("username", "clara"),
                ("display_name", "Clara"),
                ("role", "picker"),
                ("site_id", "no-such-site"),
                ("password", pw),
            ],
            404,
        ),
        (
            vec![
                ("username", "manager"),
                ("display_name", "Again"),
                ("role", "manager"),
                ("password", pw),
            ],
            400,
        ),
        (
            vec![
                ("username", "clara"),
                ("display_name", " "),
                ("role", "manager"),
                ("password", pw),
            ],
            400,
        ),
    ] {
        let a = admin.post("/admin/users", &fields).await?;
        assert_eq!(a.status, status, "{fields:?}: {}", a.body);
    }
    assert_eq!(users().await?, before, "nothing added");
    let mut manager = Browser::new(&base)?;
    manager.sign_in("manager", password(2)).await?;
    let not_admin = manager
        .post(
            "/admin/users",
            &[
                ("username", "mallory"),
                ("display_name", "M"),
                ("role", "admin"),
                ("password", pw),
            ],
        )
        .await?;
    assert_eq!(not_admin.status, 403);
    let added = admin
        .post(
            "/admin/users",
            &[
                ("username", "clara"),
                ("display_name", "Clara"),
                ("role", "manager"),
                ("password", pw),
            ],
        )
        .await?;
    assert_eq!(added.status, 303, "{}", added.body);
    assert!(
        admin
            .get(added.location())
            .await?
            .body
            .contains("Clara (clara) can sign in now.")
    );
    let mut clara = Browser::new(&base)?;
    assert_eq!(clara.sign_in("clara", pw).await?.status, 303);
    assert_eq!(clara.get("/stock").await?.status, 200);
    let clara_id = app_user::Entity::find()
        .filter(app_user::Column::Username.eq("clara"))
        .one(&server.db)
        .await?
        .map(|u| u.id)
        .unwrap_or_default();
    // A manager may not disable, an admin not themselves; an admin disables Clara and her
    // session ends at once.
    assert_eq!(
        manager
            .post(&format!("/admin/users/{clara_id}/disable"), &[])
            .await?
            .status,
        403
    );
    let admin_id = app_user::Entity::find()
        .filter(app_user::Column::Username.eq("admin"))
        .one(&server.db)
        .await?
        .map(|u| u.id)
        .unwrap_or_default();
    assert_eq!(
        admin
            .post(&format!("/admin/users/{admin_id}/disable"), &[])
            .await?
            .status,
        400
    );
    assert_eq!(
        admin
            .post("/admin/users/no-such-user/disable", &[])
            .await?
            .status,
        404
    );
    assert_eq!(
        admin
            .post(&format!("/admin/users/{clara_id}/disable"), &[])
            .await?
            .status,
        303
    );
    assert_eq!(
        clara.get("/stock").await?.status,
        303,
        "disabled: back to sign-in"
    );
    assert_ne!(clara.sign_in("clara", pw).await?.status, 303);
    assert_eq!(
        admin
            .post(&format!("/admin/users/{clara_id}/enable"), &[])
            .await?
            .status,
        303
    );
    assert_eq!(clara.sign_in("clara", pw).await?.status, 303);
    let api = swt_tests::http::client()
        .get(format!("{base}/api/v1/trace/stock"))
        .send()
        .await?;
    assert_eq!(api.status(), 401);
    assert!(
        api.headers()["content-type"]
            .to_str()?
            .contains("application/json")
    );
    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_traces_packs_lots_and_works_exceptions() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = api::login(&base, "manager", password(2)).await?;
    let task = |order: &str| {
        json!({"kind": "picking", "site": SITE, "refs": {"order": order},
            "expected": {"lines": [{"gtin": GTIN, "quantity": 10}]}})
    };
    let first = api::create_task(&base, &manager, &task("SO-1001")).await?;
    let second = api::create_task(&base, &manager, &task("SO-1002")).await?;

    // A picker picks three packs of lot L7 for SO-1001 through the real client, and one
    // of them again for SO-1002: a double pick the projection raises.
    let (b, t1, t2) = (base.clone(), first.clone(), second.clone());
    blocking(move || {
        let mut s = Scanner::sign_in(&b, "picker", password(0), demo::DEVICES[0].0, None)?;
        s.sync()?;
        // Scanned now, so that today's figures and the last week's chart show them.
        let now = u64::try_from(chrono::Utc::now().timestamp_millis())?;
        for (n, serial) in ["S1", "S2", "S3"].into_iter().enumerate() {
            let mut scan = s.pack_scan(GTIN, serial, "L7", "290131");
            scan.device_time_ms = now + n as u64;
            s.store.record_scan(&t1, &scan)?;
        }
        let mut again = s.pack_scan(GTIN, "S1", "L7", "290131");
        again.device_time_ms = now + 10;
        s.store.record_scan(&t2, &again)?;
        s.sync()?;
        Ok(())
    })
    .await?;
    projected::wait_for(&server.db, &first, 3).await?;
    projected::wait_for(&server.db, &second, 1).await?;

    let mut b = Browser::new(&base)?;
    assert_eq!(b.sign_in("manager", password(2)).await?.status, 303);

    // The search box takes what a scanner types: a DataMatrix with its symbology
    // identifier and group separator goes straight to the pack.
    let dm = "]d2010036150023101217290131".to_owned() + "10L7\u{1d}21S2";
    let q: String = form_urlencoded::byte_serialize(dm.as_bytes()).collect();
    let found = b.get(&format!("/search?q={q}")).await?;
    assert_eq!(found.status, 303);
    assert_eq!(found.location(), format!("/units/sgtin:{GTIN}:S2"));
    let pack = b.get(found.location()).await?;
    assert_eq!(pack.status, 200);
    assert!(pack.body.contains("L7") && pack.body.contains("picking"));
    assert!(
        pack.body.contains("ni:///sha-256;"),
        "EPCIS event ids shown"
    );
    // A Digital Link, a lot, an order number, a bare serial.
    let dl = b
        .get(&format!(
            "/search?q=https%3A%2F%2Fid.gs1.org%2F01%2F{GTIN}%2F21%2FS3"
        ))
        .await?;
    assert_eq!(dl.location(), format!("/units/sgtin:{GTIN}:S3"));
    let lot = b.get("/search?q=L7").await?;
    assert_eq!(lot.location(), format!("/lots/{GTIN}/L7"), "{}", lot.body);
    let order = b.get("/search?q=SO-1001").await?;
    assert_eq!(order.status, 200, "several packs: a list");
    assert!(order.body.contains("S2") && order.body.contains("S3"));
    assert_eq!(
        b.get("/search?q=S2").await?.location(),
        format!("/units/sgtin:{GTIN}:S2")
    );
    // Hostile or unknown input: escaped, a clear answer, nothing else.
    let xss = b
        .get("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await?;
    assert_eq!(xss.status, 200);
    assert!(!xss.body.contains("<script>alert(1)"), "escaped");
    assert!(xss.body.contains("Nothing matches"));
    let bad = b.get("/units/sgtin:123:x").await?;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.headers["content-type"]
            .to_str()?
            .starts_with("text/html")
    );
    assert_eq!(
        b.get(&format!("/units/sgtin:{GTIN}:NOPE")).await?.status,
        404
    );

    // The lot's recall impact, its trace report and CSV, the pack's EPCIS.
    let lot = b.get(&format!("/lots/{GTIN}/L7")).await?;
    assert_eq!(lot.status, 200);
    assert!(lot.body.contains("S1") && lot.body.contains("SO-1001"));
    let report = b.get(&format!("/lots/{GTIN}/L7/report")).await?;
    assert_eq!(report.status, 200);
    assert!(report.body.contains("Transaction history"));
    let csv = b.get(&format!("/lots/{GTIN}/L7/report.csv")).await?;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()?
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("event_time,objects,biz_step"));
    assert!(lines.len() >= 5, "one line per event: {}", csv.body);
    assert!(lines[1..].iter().all(|l| l.contains("ni:///sha-256;")));
    let epcis = b.get(&format!("/units/sgtin:{GTIN}:S1/epcis")).await?;
    assert_eq!(epcis.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&epcis.body)?;
    assert_eq!(doc["type"], "EPCISQueryDocument");

    // The exceptions queue: the double pick, assigned, commented, resolved, audited.
    let open = trace_exception::Entity::find()
        .filter(trace_exception::Column::State.eq("open"))
        .all(&server.db)
        .await?;
    let exc = open
        .iter()
        .find(|e| e.kind == "double_pick")
        .ok_or_else(|| anyhow::anyhow!("no double pick in {open:?}"))?;
    let queue = b.get("/exceptions").await?;
    assert!(queue.body.contains("double pick") && queue.body.contains(&exc.id));
    let manager_id = app_user::Entity::find()
        .filter(app_user::Column::Username.eq("manager"))
        .one(&server.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("manager"))?
        .id;
    let manager_id = manager_id.as_str();
    let path = |what: &str| format!("/exceptions/{}/{what}", exc.id);
    // Without the CSRF token nothing changes.
    let forged = b
        .post_raw(&path("resolve"), &[("resolution", "sneaky")], &[])
        .await?;
    assert_eq!(forged.status, 403);
    let a = b.post(&path("assign"), &[("assignee", manager_id)]).await?;
    assert_eq!(a.status, 303, "{}", a.body);
    let bad_user = b.post(&path("assign"), &[("assignee", "nobody")]).await?;
    assert_eq!(bad_user.status, 400);
    b.post(&path("comment"), &[("note", "called the picker")])
        .await?;
    let empty = b.post(&path("resolve"), &[("resolution", "  ")]).await?;
    assert_eq!(empty.status, 400);
    let r = b
        .post(&path("resolve"), &[("resolution", "second pick put back")])
        .await?;
    assert_eq!(r.status, 303);
    let twice = b.post(&path("resolve"), &[("resolution", "again")]).await?;
    assert_eq!(twice.status, 409, "resolved once");
    let row = trace_exception::Entity::find_by_id(exc.id.clone())
        .one(&server.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    assert_eq!(
        (
            row.state.as_str(),
            row.resolution.as_deref(),
            row.assigned_to.as_deref()
        ),
        ("resolved", Some("second pick put back"), Some(manager_id))
    );
    let notes = exception_note::Entity::find()
        .filter(exception_note::Column::ExceptionId.eq(exc.id.clone()))
        .all(&server.db)
        .await?;
    let actions: Vec<&str> = notes.iter().map(|n| n.action.as_str()).collect();
    assert_eq!(actions, ["assign", "comment"]);
    assert!(notes.iter().all(|n| n.user_id == manager_id));
    let resolved = b.get("/exceptions?state=resolved").await?;
    assert!(
        resolved.body.contains("called the picker")
            && resolved.body.contains("second pick put back")
    );

    // Scanners: a manager may look, only an admin disables.
    let dev = demo::DEVICES[0].0;
    let devices = b.get("/devices").await?;
    assert!(devices.body.contains("Memphis scanner 1"));
    assert_eq!(
        b.post(&format!("/devices/{dev}/disable"), &[])
            .await?
            .status,
        403
    );
    let mut admin = Browser::new(&base)?;
    admin.sign_in("admin", password(3)).await?;
    let off = admin.post(&format!("/devices/{dev}/disable"), &[]).await?;
    assert_eq!(off.status, 303);
    let d = device::Entity::find_by_id(dev)
        .one(&server.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("device"))?;
    assert!(d.disabled);
    assert!(admin.get("/devices").await?.body.contains("disabled"));

    // A manager of another organisation sees none of it, by any way in.
    let other = swt_server::auth::service::add_org(&server.db, "Other 3PL", None).await?;
    swt_server::auth::service::add_user(
        &server.db,
        &other.id,
        None,
        "other-manager",
        "Other manager",
        swt_server::auth::Role::Manager,
        "other-manager-password",
    )
    .await?;
    let mut stranger = Browser::new(&base)?;
    assert_eq!(
        stranger
            .sign_in("other-manager", "other-manager-password")
            .await?
            .status,
        303
    );
    for path in [
        format!("/units/sgtin:{GTIN}:S1"),
        format!("/lots/{GTIN}/L7"),
        format!("/lots/{GTIN}/L7/report.csv"),
        format!("/units/sgtin:{GTIN}:S1/epcis"),
    ] {
        assert_eq!(stranger.get(&path).await?.status, 404, "{path}");
    }
    let nothing = stranger.get("/search?q=S2").await?;
    assert_eq!(nothing.status, 200);
    assert!(nothing.body.contains("Nothing matches"));
    let queue = stranger.get("/exceptions?state=resolved").await?;
    assert!(
        !queue.body.contains(&exc.id),
        "another organisation's exception"
    );
    let resolve = stranger
        .post(&path("comment"), &[("note", "not mine")])
        .await?;
    assert_eq!(resolve.status, 404);

    // The overview counts today's work and draws its charts from the rollup.
    let overview = b.get("/").await?;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("Scans per hour by site"),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("<svg role=\"img\""));
    server.stop().await?;
    tdb.close().await
}
