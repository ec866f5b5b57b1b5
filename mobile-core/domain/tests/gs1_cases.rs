//! The 279 shared GS1 cases (tests/data/gs1-cases.jsonl, derived from GS1's own engine
//! tests and the standards): every valid case must parse to exactly the expected AIs, every
//! invalid one must fail with the expected rule as its machine code (and AI, when the
//! engine's message names one).

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use serde::Deserialize;
use swt_domain::gs1::{ParseOptions, parse};

#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    input: String,
    form: String,
    valid: bool,
    #[serde(default, deserialize_with = "null_as_empty")]
    expect: BTreeMap<String, String>,
    rule: Option<String>,
    engine_error: Option<String>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("data/gs1-cases.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("case line"))
        .collect()
}

/// The AI an engine message names, as in "AI (17): ..." or "... for AI (21) ...".
fn engine_ai(msg: &str) -> Option<&str> {
    let i = msg.find("AI (")? + 4;
    let rest = msg.get(i..)?;
    Some(&rest[..rest.find(')')?])
}

#[test]
fn all_shared_cases_pass() {
    let cases = cases();
    assert_eq!(cases.len(), 279, "the case file should hold 279 cases");
    let opts = ParseOptions::default();
    let mut failures = Vec::new();
    for c in &cases {
        let got = parse(c.input.as_bytes(), &opts);
        match (c.valid, got) {
            (true, Ok(d)) => {
                let ais: BTreeMap<String, String> = d
                    .iter()
                    .map(|x| (x.ai.to_owned(), x.value.to_owned()))
                    .collect();
                let repeats_agree = d
                    .iter()
                    .all(|x| c.expect.get(x.ai).map(String::as_str) == Some(x.value));
                if ais != c.expect || !repeats_agree {
                    failures.push(format!(
                        "{} ({}): got AIs {ais:?}, want {:?}",
                        c.id, c.form, c.expect
                    ));
                }
            }
            (true, Err(e)) => failures.push(format!(
                "{} ({}): unexpected error {} {e}",
                c.id,
                c.form,
                e.code()
            )),
            (false, Ok(d)) => failures.push(format!(
                "{} ({}): expected {:?}, got valid {d}",
                c.id, c.form, c.rule
            )),
            (false, Err(e)) => {
                let rule = c.rule.as_deref().unwrap_or("");
                if e.code() != rule {
                    failures.push(format!(
                        "{} ({}): expected {rule}, got {} ({e})",
                        c.id,
                        c.form,
                        e.code()
                    ));
                } else if let Some(want_ai) = c.engine_error.as_deref().and_then(engine_ai)
                    && e.ai() != Some(want_ai)
                {
                    failures.push(format!(
                        "{} ({}): expected AI {want_ai}, got {:?} ({e})",
                        c.id,
                        c.form,
                        e.ai()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}
