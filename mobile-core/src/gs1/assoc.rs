//! Association rules over all AIs of one item (GenSpecs, Syntax Dictionary `req`/`ex`):
//! invalid pairs, requisites, repeats with different values and the digital signature rule.
//! Checked in that order, each AI in sorted order, like the GS1 engine.

use super::element::Elem;
use super::error::{ErrorKind, Gs1Error};
use super::table::{AiEntry, Pat, entry, lookup};

/// AIs present, sorted and without repeats. The table is in lexical AI order, so sorting
/// table indexes sorts AIs. Inline for up to 32 distinct AIs, no allocation.
struct Present {
    inline: [u16; 32],
    len: usize,
    spill: Vec<u16>,
}

impl Present {
    fn new(elems: &[Elem]) -> Present {
        let mut p = Present {
            inline: [0; 32],
            len: 0,
            spill: Vec::new(),
        };
        if elems.len() > p.inline.len() {
            let mut v: Vec<u16> = elems.iter().map(|e| e.idx).collect();
            v.sort_unstable();
            v.dedup();
            p.spill = v;
            return p;
        }
        for e in elems {
            let s = p.inline.get(..p.len).unwrap_or_default();
            if let Err(at) = s.binary_search(&e.idx) {
                // Insertion into a sorted prefix: tiny lists, cheaper than a sort.
                if let Some(window) = p.inline.get_mut(at..=p.len) {
                    window.rotate_right(1);
                    if let Some(first) = window.first_mut() {
                        *first = e.idx;
                    }
                }
                p.len += 1;
            }
        }
        p
    }

    fn as_slice(&self) -> &[u16] {
        if self.spill.is_empty() {
            self.inline.get(..self.len).unwrap_or_default()
        } else {
            &self.spill
        }
    }
}

/// Table indexes present, as a bitset, for O(1) tests of exact patterns.
struct Bits([u64; 16]);

impl Bits {
    fn new(p: &[u16]) -> Bits {
        let mut b = Bits([0; 16]);
        for &i in p {
            if let Some(w) = b.0.get_mut(usize::from(i) / 64) {
                *w |= 1 << (i % 64);
            }
        }
        b
    }

    fn has(&self, i: u16) -> bool {
        self.0
            .get(usize::from(i) / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Whether any present AI other than `except` matches `pat`.
#[inline]
fn present_match(pat: &Pat, p: &[u16], bits: &Bits, except: Option<u16>) -> Option<u16> {
    match pat.exact_index() {
        Some(None) => None,
        Some(Some(i)) => (Some(i) != except && bits.has(i)).then_some(i),
        None => p
            .iter()
            .copied()
            .find(|&o| Some(o) != except && pat.matches(entry(o).ai)),
    }
}

fn ais(p: &[u16]) -> impl Iterator<Item = &'static AiEntry> + '_ {
    p.iter().map(|&i| entry(i))
}

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
    let present = Present::new(elems);
    let p = present.as_slice();

    let bits = Bits::new(p);
    for &i in p {
        let e = entry(i);
        for pat in e.ex {
            if let Some(other) = present_match(pat, p, &bits, Some(i)).map(entry) {
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
        for e in ais(p) {
            for req in e.req {
                let met = req.groups.iter().any(|g| {
                    g.iter()
                        .all(|pat| present_match(pat, p, &bits, None).is_some())
                });
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

    if lookup(b"8030").is_some_and(|(i, _)| bits.has(i)) {
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
