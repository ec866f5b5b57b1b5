//! `swt gs1 check` end to end: the real binary, its JSON lines, exit codes and streaming.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn swt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_swt"))
        .args(["gs1", "check"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swt");
    let mut pipe = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().expect("swt output");
    writer.join().expect("writer thread");
    out
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn stdin_lines_give_json_objects_and_exit_1_when_one_is_invalid() {
    let input = b"01095060001343521729010110ABC123\x1d21SN001\n(01)09506000134352(17)290431\n";
    let out = swt(&[], input);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["valid"], true);
    assert_eq!(
        lines[0]["input"],
        "01095060001343521729010110ABC123\u{1d}21SN001"
    );
    assert_eq!(lines[0]["error"], serde_json::Value::Null);
    let ais: Vec<(String, String)> = lines[0]["ais"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["ai"].as_str().unwrap().to_owned(),
                a["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        ais,
        [
            ("01", "09506000134352"),
            ("17", "290101"),
            ("10", "ABC123"),
            ("21", "SN001")
        ]
        .map(|(a, v)| (a.to_owned(), v.to_owned()))
    );
    assert_eq!(lines[1]["valid"], false);
    assert_eq!(lines[1]["ais"], serde_json::json!([]));
    assert_eq!(lines[1]["error"]["code"], "invalid_date_day");
    assert_eq!(lines[1]["error"]["ai"], "17");
    assert_eq!(
        lines[1]["error"]["message"],
        "AI (17): day 31 does not exist in April"
    );
}

#[test]
fn all_valid_exits_0_and_arguments_work() {
    let out = swt(
        &[
            "(01)09506000134352(10)ABC",
            "https://id.gs1.org/00/106141411234567897",
        ],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["ais"][0]["ai"], "00");
}

#[test]
fn usage_error_exits_2() {
    let out = swt(&["--format", "xml"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = swt(&["--separator", "ab"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn non_utf8_input_is_reported_lossily_and_crlf_is_a_line_end() {
    let out = swt(&[], b"010950600013435\xff\r\n0109506000134352\r\n");
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["input"], "010950600013435\u{fffd}");
    assert_eq!(lines[0]["error"]["code"], "bad_charset_numeric");
    assert_eq!(lines[1]["valid"], true);
}

#[test]
fn separator_substitute_option() {
    let code = b"010950600013435210ABC~21XYZ\n";
    let out = swt(&[], code);
    assert_eq!(json_lines(&out)[0]["error"]["code"], "bad_charset_cset82");
    let out = swt(&["--separator", "~"], code);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out)[0]["ais"][2]["value"], "XYZ");
}

#[test]
fn warnings_are_reported() {
    let out = swt(&["010950600013435210ABC21XYZ"], b"");
    assert_eq!(out.status.code(), Some(0));
    let l = &json_lines(&out)[0];
    assert_eq!(l["warnings"][0]["code"], "suspect_missing_separator");
    assert_eq!(l["warnings"][0]["ai"], "10");
}

#[test]
fn human_format() {
    let out = swt(&["--format", "human", "(01)09506000134352(17)290230"], b"");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("INVALID  (01)09506000134352(17)290230"),
        "{text}"
    );
    assert!(text.contains("[invalid_date_day"), "{text}");
    let out = swt(&["--format", "human"], b"]d2010950600013435210ABC\x1d21X\n");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("valid    ]d2010950600013435210ABC<GS>21X"),
        "{text}"
    );
    assert!(text.contains("(21)"), "{text}");
}

#[test]
fn streams_many_lines() {
    let mut input = Vec::new();
    for i in 0..20_000u32 {
        if i % 1000 == 999 {
            input.extend_from_slice(b"0109506000134353\n");
        } else {
            input.extend_from_slice(b"]d201095060001343521729010110ABC123\x1d21SN001\n");
        }
    }
    let out = swt(&[], &input);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 20_000);
    assert_eq!(text.matches("\"valid\":false").count(), 20);
}

/// `swt gs1 check < codes | head -1`: the reader closes the pipe after one line; swt must
/// stop quietly, with status 0 and nothing on stderr, in both formats.
#[test]
fn closed_stdout_ends_the_run_quietly() {
    use std::io::{BufRead, BufReader};

    for format in ["json", "human"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_swt"))
            .args(["gs1", "check", "--format", format])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start swt");
        let mut stdin = child.stdin.take().expect("stdin");
        // Far more output than a pipe buffers, so swt is still writing when the reader
        // goes away.
        let writer = std::thread::spawn(move || {
            let line = b"]d201095060001343521729010110ABC123\x1d21SN001\n";
            for _ in 0..200_000 {
                if stdin.write_all(line).is_err() {
                    break; // swt has stopped reading: expected once it exits.
                }
            }
        });
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        reader.read_line(&mut first).expect("first line");
        assert!(!first.is_empty(), "{format}: no output before the close");
        drop(reader); // `head -1` exits here
        let out = child.wait_with_output().expect("swt exits");
        writer.join().expect("writer thread");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("Broken pipe"), "{format}: {stderr}");
        assert_eq!(stderr, "", "{format}");
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
    }
}
