//! Association rules over all AIs of one item (GenSpecs, Syntax Dictionary `req`/`ex`):
//! invalid pairs, requisites, repeats with different values and the digital signature rule.
//! Checked in that order, each AI in sorted order, like the GS1 engine.

use super::element::Elem;
use super::error::{ErrorKind, Gs1Error};
use super::table::{N_ENTRIES, Pat, entry, index_of};

const WORDS: usize = N_ENTRIES.div_ceil(64);

/// The AIs present, as a bitset over table indexes: O(1) tests of exact patterns, and
/// iterating the set bits visits each AI once in table order, which is lexical AI order
/// (the order the GS1 engine checks in), with no sorting and no allocation.
struct Present([u64; WORDS]);

impl Present {
    /// The set of AIs in `elems`, and whether any AI appears more than once.
    fn new(elems: &[Elem]) -> (Present, bool) {
        let mut b = Present([0; WORDS]);
        let mut repeats = false;
        for e in elems {
            if let Some(w) = b.0.get_mut(usize::from(e.idx) / 64) {
                let bit = 1u64 << (e.idx % 64);
                repeats |= *w & bit != 0;
                *w |= bit;
            }
        }
        (b, repeats)
    }

    #[inline]
    fn has(&self, i: u16) -> bool {
        self.0
            .get(usize::from(i) / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Table indexes present, ascending.
    fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((wi * 64) as u16 + bit as u16)
            })
        })
    }
}

/// The first present AI (in lexical order) other than `except` that matches `pat`.
#[inline]
fn present_match(pat: &Pat, p: &Present, except: Option<u16>) -> Option<u16> {
    match pat.exact_index() {
        Some(None) => None,
        Some(Some(i)) => (Some(i) != except && p.has(i)).then_some(i),
        None => p
            .iter()
            .find(|&o| Some(o) != except && pat.matches(entry(o).ai)),
    }
}

const IDX_8030: u16 = index_of("8030");

/// Each element with the first earlier element of the same AI, if any. Quadratic scan for
/// the usual handful of AIs (no allocation), a table for long inputs (no blow-up).
pub(crate) fn with_first_occurrence(
    elems: &[Elem],
) -> impl Iterator<Item = (&Elem, Option<&Elem>)> {
    let first: Option<Vec<u32>> = (elems.len() > 32).then(|| {
        let mut t = vec![u32::MAX; usize::from(u16::MAX) + 1];
        for (i, el) in elems.iter().enumerate().rev() {
            if let Some(slot) = t.get_mut(usize::from(el.idx)) {
                *slot = i as u32;
            }
        }
        t
    });
    elems.iter().enumerate().map(move |(i, el)| {
        let prev = match &first {
            None => elems.iter().take(i).find(|x| x.idx == el.idx),
            Some(t) => t
                .get(usize::from(el.idx))
                .filter(|&&j| (j as usize) < i)
                .and_then(|&j| elems.get(j as usize)),
        };
        (el, prev)
    })
}

/// Checks every association rule; `requisites` switches the `req` check (on by default).
pub(crate) fn check(buf: &[u8], elems: &[Elem], requisites: bool) -> Result<(), Gs1Error> {
    let (p, repeats) = Present::new(elems);

    for i in p.iter() {
        let e = entry(i);
        for pat in e.ex {
            if let Some(other) = present_match(pat, &p, Some(i)).map(entry) {
                return Err(Gs1Error::new(
                    ErrorKind::MutuallyExclusive,
                    Some(e.ai),
                    None,
                    format!(
                        "AI ({}) and AI ({}) must not appear together on one item",
                        e.ai, other.ai
                    ),
                ));
            }
        }
    }

    if requisites {
        for e in p.iter().map(entry) {
            for req in e.req {
                let met = req
                    .groups
                    .iter()
                    .any(|g| g.iter().all(|pat| present_match(pat, &p, None).is_some()));
                if !met {
                    let needs = req.text.replace(',', " or ").replace('+', " with ");
                    return Err(Gs1Error::at(
                        ErrorKind::MissingRequisite,
                        e.ai,
                        None,
                        &format!("needs AI {needs} on the same item, which is missing"),
                    ));
                }
            }
        }
    }

    // Only a repeated AI can have a different value the second time.
    if repeats {
        let value = |el: &Elem| {
            buf.get(el.start as usize..el.end as usize)
                .unwrap_or_default()
        };
        for (el, prev) in with_first_occurrence(elems) {
            if let Some(prev) = prev
                && value(prev) != value(el)
            {
                return Err(Gs1Error::at(
                    ErrorKind::RepeatedAiDifferentValues,
                    entry(el.idx).ai,
                    Some(el.pos as usize),
                    &format!(
                        "appears twice with different values (\"{}\" and \"{}\")",
                        String::from_utf8_lossy(value(prev)),
                        String::from_utf8_lossy(value(el))
                    ),
                ));
            }
        }
    }

    if p.has(IDX_8030) {
        for el in elems {
            let e = entry(el.idx);
            let base_len = match e.ai {
                "253" | "255" => 13,
                "8003" => 14,
                _ => continue,
            };
            if (el.end - el.start) as usize <= base_len {
                return Err(Gs1Error::at(
                    ErrorKind::DigsigSerial,
                    e.ai,
                    Some(el.pos as usize),
                    "must carry its serial part when a digital signature (8030) is present",
                ));
            }
        }
    }
    Ok(())
}
