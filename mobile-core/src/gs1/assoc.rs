//! Association rules over all AIs of one item (GenSpecs, Syntax Dictionary `req`/`ex`):
//! invalid pairs, requisites, repeats with different values and the digital signature rule.
//! Checked in that order, each AI in sorted order, like the GS1 engine.

use super::element::Elem;
use super::error::{ErrorKind, Gs1Error};
use super::table::{AiEntry, entry};

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

fn ais(p: &[u16]) -> impl Iterator<Item = &'static AiEntry> + '_ {
    p.iter().map(|&i| entry(i))
}

/// Checks every association rule; `requisites` switches the `req` check (on by default).
pub(crate) fn check(buf: &[u8], elems: &[Elem], requisites: bool) -> Result<(), Gs1Error> {
    let present = Present::new(elems);
    let p = present.as_slice();

    for e in ais(p) {
        for pat in e.ex {
            if let Some(other) = ais(p).find(|o| o.ai != e.ai && pat.matches(o.ai)) {
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
                let met = req
                    .groups
                    .iter()
                    .any(|g| g.iter().all(|pat| ais(p).any(|o| pat.matches(o.ai))));
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
    for (i, el) in elems.iter().enumerate() {
        if let Some(prev) = elems.iter().take(i).find(|x| x.idx == el.idx)
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

    if ais(p).any(|e| e.ai == "8030") {
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
