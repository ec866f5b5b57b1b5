//! Warnings on valid data: a variable-length value that swallowed further AIs (a lost
//! FNC1/GS separator) and expiry dates with day 00. They never change the verdict.

use super::element::{Elem, ElemList, parses_cleanly};
use super::error::{Warning, WarningKind};
use super::table::{ai_len_for_prefix, entry};

fn value<'a>(buf: &'a [u8], el: &Elem) -> &'a [u8] {
    buf.get(el.start as usize..el.end as usize)
        .unwrap_or_default()
}

/// Appends the warnings for `elems`. The separator heuristic only applies to element
/// strings, the one form where a separator can silently get lost.
pub(crate) fn collect(buf: &[u8], elems: &[Elem], element_form: bool, out: &mut Vec<Warning>) {
    let mut tail = ElemList::default();
    for el in elems {
        let e = entry(el.idx);
        let v = value(buf, el);
        if matches!(e.ai, "17" | "15") && v.get(4..6) == Some(b"00") {
            out.push(Warning {
                kind: WarningKind::ExpiryDayZero,
                ai: e.ai,
                offset: 4,
                message: format!(
                    "AI ({}): day 00 (end of month) is valid, but healthcare guidance asks for a real day",
                    e.ai
                ),
            });
        }
        if !element_form || e.min_len() == e.max_len() {
            continue;
        }
        for i in 1..v.len().saturating_sub(2) {
            let (Some(&a), Some(&b)) = (v.get(i), v.get(i + 1)) else {
                break;
            };
            if ai_len_for_prefix(a, b).is_none() {
                continue;
            }
            let rest = v.get(i..).unwrap_or_default();
            if !parses_cleanly(rest, &mut tail) {
                continue;
            }
            let new_ai = tail
                .as_slice()
                .iter()
                .find(|t| !elems.iter().any(|x| x.idx == t.idx));
            if let Some(t) = new_ai {
                let swallowed = entry(t.idx).ai;
                out.push(Warning {
                    kind: WarningKind::SuspectMissingSeparator,
                    ai: e.ai,
                    offset: i,
                    message: format!(
                        "AI ({}): value \"{}\" may contain AI ({}) after a lost separator; \
                         check that the printed lot/serial matches",
                        e.ai,
                        String::from_utf8_lossy(v),
                        swallowed
                    ),
                });
                break;
            }
        }
    }
}
