//! Association rules over all AIs of one item (GenSpecs, Syntax Dictionary `req`/`ex`):
//! invalid pairs, requisites, repeats with different values and the digital signature rule.
//! Checked in that order, each AI in sorted order, like the GS1 engine.

use super::element::Elem;
use super::error::{Detail, ErrorKind, Gs1Error};
use super::table::{N_ENTRIES, Pat, entry, fast_rules, index_of};

const WORDS: usize = N_ENTRIES.div_ceil(64);

/// Distinct AIs kept in a sorted inline list (no allocation) up to this many.
const SORTED_INLINE: usize = 16;

/// The AIs present: a bitset over table indexes for O(1) tests of exact patterns, and the
/// same set as a sorted list, which is lexical AI order (the order the GS1 engine checks
/// in). The list is inline for the usual handful of AIs; only codes with more distinct
/// AIs than that build it from the bitset on the heap.
struct Present {
    bits: [u64; WORDS],
    sorted: [u16; SORTED_INLINE],
    n: usize,
    spill: Vec<u16>,
}

impl Present {
    /// Adds the AIs of `elems` to an empty set, and tells whether any AI appears more than
    /// once. Filled in place: returning the set by value cost a copy per parse.
    #[inline(always)]
    fn fill(&mut self, elems: &[Elem]) -> bool {
        let p = self;
        let mut repeats = false;
        let mut overflow = false;
        for e in elems {
            let idx = e.idx;
            let Some(w) = p.bits.get_mut(usize::from(idx) / 64) else {
                continue;
            };
            let bit = 1u64 << (idx % 64);
            if *w & bit != 0 {
                repeats = true;
                continue;
            }
            *w |= bit;
            if p.n == SORTED_INLINE {
                overflow = true;
                continue;
            }
            // Insertion into a short sorted list: cheaper than sorting afterwards.
            let mut j = p.n;
            while let Some(&prev) = j.checked_sub(1).and_then(|k| p.sorted.get(k)) {
                if prev < idx {
                    break;
                }
                if let Some(slot) = p.sorted.get_mut(j) {
                    *slot = prev;
                }
                j -= 1;
            }
            if let Some(slot) = p.sorted.get_mut(j) {
                *slot = idx;
            }
            p.n += 1;
        }
        if overflow {
            p.spill = p.iter_bits().collect();
        }
        repeats
    }

    #[inline]
    fn has(&self, i: u16) -> bool {
        self.bits
            .get(usize::from(i) / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn iter_bits(&self) -> impl Iterator<Item = u16> + '_ {
        self.bits.iter().enumerate().flat_map(|(wi, &w)| {
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

    /// Table indexes present, ascending.
    #[inline]
    fn as_slice(&self) -> &[u16] {
        if self.spill.is_empty() {
            self.sorted.get(..self.n).unwrap_or_default()
        } else {
            &self.spill
        }
    }
}

/// The first present AI (in lexical order) other than `except` that matches `pat`.
#[inline]
fn present_match(pat: &Pat, p: &Present, except: Option<u16>) -> Option<u16> {
    match pat.exact_index() {
        Some(None) => None,
        Some(Some(i)) => (Some(i) != except && p.has(i)).then_some(i),
        None => p
            .as_slice()
            .iter()
            .copied()
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
///
/// A quick pass first: when every AI present has its rules in the precomputed shape
/// ([`fast_rules`]), no AI repeats and there is no digital signature, the rules are
/// tested on a bitset in data order, which is all a valid code needs. Anything else, and
/// any broken rule, takes the full check below, which walks the AIs in the GS1 engine's
/// order so that the error reported is the one the engine reports.
pub(crate) fn check(buf: &[u8], elems: &[Elem], requisites: bool) -> Result<(), Gs1Error> {
    if quick_pass(elems, requisites) {
        return Ok(());
    }
    check_in_order(buf, elems, requisites)
}

/// Whether the quick pass alone shows every rule met (see [`check`]).
#[inline]
fn quick_pass(elems: &[Elem], requisites: bool) -> bool {
    let mut bits = [0u64; WORDS];
    for el in elems {
        let Some(w) = bits.get_mut(usize::from(el.idx) / 64) else {
            return false;
        };
        let bit = 1u64 << (el.idx % 64);
        if *w & bit != 0 {
            return false; // a repeat: its values must be compared
        }
        *w |= bit;
    }
    let has = |i: u16| {
        bits.get(usize::from(i) / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    };
    if has(IDX_8030) {
        return false;
    }
    elems.iter().all(|el| {
        let f = fast_rules(el.idx);
        let ex = f.ex.get(..usize::from(f.n_ex)).unwrap_or_default();
        let req = f.req.get(..usize::from(f.n_req)).unwrap_or_default();
        f.ex_fast
            && f.req_fast
            && !ex.iter().any(|&o| o != el.idx && has(o))
            && (!requisites || !f.has_req || req.iter().any(|&o| has(o)))
    })
}

/// The full check, in the GS1 engine's order (see [`check`]).
#[cold]
#[inline(never)]
fn check_in_order(buf: &[u8], elems: &[Elem], requisites: bool) -> Result<(), Gs1Error> {
    let mut p = Present {
        bits: [0; WORDS],
        sorted: [0; SORTED_INLINE],
        n: 0,
        spill: Vec::new(),
    };
    let repeats = p.fill(elems);

    for &i in p.as_slice() {
        let e = entry(i);
        let fast = fast_rules(i);
        if fast.ex_fast {
            // The same patterns in the same order, as precomputed table indexes.
            let ex = fast.ex.get(..usize::from(fast.n_ex)).unwrap_or_default();
            if let Some(&other) = ex.iter().find(|&&o| o != i && p.has(o)) {
                return Err(Gs1Error::detail(
                    ErrorKind::MutuallyExclusive,
                    None,
                    Detail::MutuallyExclusive(entry(other).ai),
                )
                .about(e.ai));
            }
            continue;
        }
        for pat in e.ex {
            if let Some(other) = present_match(pat, &p, Some(i)).map(entry) {
                return Err(Gs1Error::detail(
                    ErrorKind::MutuallyExclusive,
                    None,
                    Detail::MutuallyExclusive(other.ai),
                )
                .about(e.ai));
            }
        }
    }

    if requisites {
        for &i in p.as_slice() {
            let e = entry(i);
            let fast = fast_rules(i);
            if fast.req_fast {
                let any = fast.req.get(..usize::from(fast.n_req)).unwrap_or_default();
                if fast.has_req && !any.iter().any(|&o| p.has(o)) {
                    return Err(Gs1Error::at_detail(
                        ErrorKind::MissingRequisite,
                        e.ai,
                        None,
                        Detail::MissingRequisite(e.req.first().map_or("", |r| r.text)),
                    ));
                }
                continue;
            }
            for req in e.req {
                let met = req
                    .groups
                    .iter()
                    .any(|g| g.iter().all(|pat| present_match(pat, &p, None).is_some()));
                if !met {
                    return Err(Gs1Error::at_detail(
                        ErrorKind::MissingRequisite,
                        e.ai,
                        None,
                        Detail::MissingRequisite(req.text),
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
                return Err(Gs1Error::at_detail(
                    ErrorKind::RepeatedAiDifferentValues,
                    entry(el.idx).ai,
                    Some(el.pos as usize),
                    Detail::RepeatedValues,
                )
                .quoting_two(value(prev), value(el)));
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
