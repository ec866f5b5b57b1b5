//! The real `swt` binary: help text, start-up failures as one clear line, serving,
//! graceful stop on SIGTERM, JSON logs, and `swt demo` run twice.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;

use swt_tests::TestDb;
use swt_tests::process::{self, Running};

fn swt() -> Command {
    // The tests decide every setting; none may leak in from the environment.
    process::command(std::path::Path::new(env!("CARGO_BIN_EXE_swt")))
}

/// Runs `swt` expecting a start-up failure; returns its stderr's error line.
fn expect_startup_failure(args: &[&str], dir: &std::path::Path) -> String {
    let out = swt().args(args).current_dir(dir).output().expect("run swt");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} must fail with status 1"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(!stderr.contains("backtrace"), "no backtrace: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("swt: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {stderr}");
    errors[0].to_owned()
}

#[test]
fn help_explains_the_settings() {
    let out = swt().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "demo", "migrate", "gs1"] {
        assert!(text.contains(word), "{word} in {text}");
    }
    let out = swt().args(["serve", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--database-url",
        "SWT_DATABASE_URL",
        "--listen",
        "127.0.0.1:8080",
        "--config",
        "--log-format",
        "sqlite://",
        "postgres://",
    ] {
        assert!(text.contains(word), "{word} in {text}");
    }
}

#[test]
fn bad_configuration_is_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");
    let sqlite = format!("sqlite://{}/ok.db", d.display());
    let line = expect_startup_failure(
        &["serve", "--listen", &listen, "--database-url", &sqlite],
        d,
    );
    assert!(
        line.contains("--listen") && line.contains(&listen),
        "{line}"
    );

    let not_a_dir = d.join("plain-file");
    std::fs::write(&not_a_dir, b"x").expect("write");
    let url = format!("sqlite://{}/swt.db", not_a_dir.display());
    let line = expect_startup_failure(&["serve", "--database-url", &url], d);
    assert!(
        line.contains("SQLite") && line.contains("--database-url"),
        "{line}"
    );

    let line = expect_startup_failure(&["serve", "--database-url", "postgres://[::1"], d);
    assert!(
        line.contains("invalid database URL") && line.contains("--database-url"),
        "{line}"
    );
    let line = expect_startup_failure(&["serve", "--database-url", "mysql://root@localhost/x"], d);
    assert!(line.contains("--database-url"), "{line}");

    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("postgres://postgres@127.0.0.1:{closed_port}/swt");
    let line = expect_startup_failure(&["serve", "--database-url", &url], d);
    assert!(
        line.contains("cannot connect") && line.contains("--database-url"),
        "{line}"
    );

    let config = d.join("swt.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndatabse_url = \"sqlite://x.db\"\n",
    )
    .expect("write");
    let line = expect_startup_failure(&["serve", "--config", config.to_str().expect("utf8")], d);
    assert!(
        line.contains("databse_url") && line.contains("swt.toml"),
        "{line}"
    );

    let line = expect_startup_failure(&["serve", "--config", "missing.toml"], d);
    assert!(line.contains("--config"), "{line}");

    // None of the failed starts left a default database behind.
    assert!(!d.join("swt.db").exists());
}

fn start(args: &[&str], dir: &std::path::Path) -> Running {
    process::start(std::path::Path::new(env!("CARGO_BIN_EXE_swt")), args, dir).expect("start swt")
}

/// Sends SIGTERM, checks a clean exit, returns stdout and the remaining log lines.
fn sigterm_and_wait(running: Running) -> (String, Vec<String>) {
    let (exit, stdout, logs) = process::signal_and_wait(running, "-TERM").expect("stop swt");
    assert!(exit.success(), "SIGTERM ends swt cleanly: {exit:?}");
    (stdout, logs)
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let resp = swt_tests::http::get(format!("http://{addr}{path}"))
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

#[test]
fn serves_then_stops_gracefully_on_sigterm_with_json_logs() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            tdb.url(),
            "--log-format",
            "json",
        ],
        dir.path(),
    );
    let addr = running.addr.clone();
    assert_eq!(get(&addr, "/healthz").0, 200);
    assert_eq!(get(&addr, "/readyz"), (200, "ready\n".to_owned()));
    let (_, logs) = sigterm_and_wait(running);
    let parsed: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON log line {l}: {e}")))
        .collect();
    let request_line = parsed
        .iter()
        .find(|v| v["span"]["path"] == "/readyz")
        .unwrap_or_else(|| panic!("a log line for the /readyz request in {logs:?}"));
    assert!(
        request_line["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{request_line}"
    );
    assert!(
        parsed.iter().any(|v| v["fields"]["message"] == "stopped"),
        "{logs:?}"
    );
    rt.block_on(tdb.close()).expect("drop test database");
}

#[test]
fn demo_twice_neither_fails_nor_duplicates() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let running = start(
            &[
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                tdb.url(),
            ],
            dir.path(),
        );
        assert_eq!(get(&running.addr, "/readyz").0, 200);
        let (stdout, _) = sigterm_and_wait(running);
        outputs.push(stdout);
    }
    assert!(outputs[0].contains("demo data seeded"), "{}", outputs[0]);
    assert!(outputs[1].contains("already present"), "{}", outputs[1]);
    for out in &outputs {
        for user in ["picker", "returns", "manager", "admin"] {
            assert!(out.contains(&format!("user {user} ")), "{out}");
        }
        assert!(out.contains("password demo-"), "{out}");
        assert!(out.contains("http://127.0.0.1:"), "{out}");
    }
    rt.block_on(tdb.close()).expect("drop test database");
}

#[test]
fn migrate_status_and_apply() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tdb = rt.block_on(TestDb::new()).expect("test database");
    let run = |args: &[&str]| {
        swt()
            .args(args)
            .args(["--database-url", tdb.url()])
            .output()
            .expect("run swt migrate")
    };
    let status = run(&["migrate", "status"]);
    assert_eq!(status.status.code(), Some(1), "pending migrations exit 1");
    assert!(String::from_utf8_lossy(&status.stdout).contains("pending"));
    let apply = run(&["migrate", "apply"]);
    assert!(apply.status.success(), "{apply:?}");
    let status = run(&["migrate", "status"]);
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.lines().all(|l| l.starts_with("applied")), "{text}");
    rt.block_on(tdb.close()).expect("drop test database");
}
