//! Warnings on valid data: a variable-length value that swallowed further AIs (a lost
//! FNC1/GS separator) and expiry dates with day 00. They never change the verdict.

use super::element::{Elem, ElemList, parses_cleanly};
use super::error::{Warning, WarningKind};
use super::table::{ai_len_for_prefix, entry, index_of, lookup, meta};

/// AIs that can plausibly be hiding in a lot/serial after a lost separator.
const LIKELY_FOLLOWERS: &[&str] = &["01", "10", "11", "13", "15", "16", "17", "21", "22", "7003"];

/// Two-digit prefixes of [`LIKELY_FOLLOWERS`]: a position whose first two bytes are not one
/// of these cannot start the swallowed part, so it is skipped without parsing anything.
static FOLLOWER_PREFIX: [bool; 100] = {
    let mut t = [false; 100];
    let mut i = 0;
    while i < LIKELY_FOLLOWERS.len() {
        let b = LIKELY_FOLLOWERS[i].as_bytes();
        t[((b[0] - b'0') * 10 + (b[1] - b'0')) as usize] = true;
        i += 1;
    }
    t
};

const IDX_15: u16 = index_of("15");
const IDX_17: u16 = index_of("17");

/// Whether an AI that is one of [`LIKELY_FOLLOWERS`] starts at `v[i..]`.
#[inline]
fn follower_at(v: &[u8], i: usize) -> bool {
    let (Some(&a), Some(&b)) = (v.get(i), v.get(i + 1)) else {
        return false;
    };
    if !a.is_ascii_digit() || !b.is_ascii_digit() {
        return false;
    }
    let prefix = usize::from((a - b'0') * 10 + (b - b'0'));
    if !FOLLOWER_PREFIX.get(prefix).copied().unwrap_or(false) {
        return false;
    }
    // The prefix fixes the AI's length; the AI itself must be a follower ("7003", not "7001").
    let Some(len) = ai_len_for_prefix(a, b) else {
        return false;
    };
    v.get(i..i + len)
        .and_then(lookup)
        .is_some_and(|(_, e)| LIKELY_FOLLOWERS.contains(&e.ai))
}

fn value<'a>(buf: &'a [u8], el: &Elem) -> &'a [u8] {
    buf.get(el.start as usize..el.end as usize)
        .unwrap_or_default()
}

/// Appends the warnings for `elems`. The separator heuristic only applies to element
/// strings, the one form where a separator can silently get lost.
pub(crate) fn collect(buf: &[u8], elems: &[Elem], element_form: bool, out: &mut Vec<Warning>) {
    let mut tail: Option<ElemList> = None;
    for el in elems {
        let v = value(buf, el);
        if (el.idx == IDX_17 || el.idx == IDX_15) && v.get(4..6) == Some(b"00") {
            let e = entry(el.idx);
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
        let m = meta(el.idx);
        // Fixed-length values cannot swallow anything; the shortest swallowed part ("10x")
        // after at least one character of the value needs 4 bytes.
        if !element_form || m.min == m.max || v.len() < 4 {
            continue;
        }
        let e = entry(el.idx);
        for i in 1..v.len().saturating_sub(2) {
            // Only AIs that commonly follow a lot or serial on a pack or case label may start
            // the swallowed part; open formats (30, 240, 90-99, ...) match inside ordinary
            // numeric serials far too often. Checked first: it rejects almost every position.
            if !follower_at(v, i) {
                continue;
            }
            let rest = v.get(i..).unwrap_or_default();
            let tail = tail.get_or_insert_with(ElemList::default);
            if !parses_cleanly(rest, tail) {
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
