//! Element strings (GenSpecs §7.8): AI data as sent by GS1 DataMatrix, GS1-128, GS1 QR,
//! DataBar and DotCode scanners, with GS (0x1D) after every field that needs FNC1.
//! Also the allocation-free list of parsed elements that every form produces.

use super::error::{ErrorKind, Gs1Error};
use super::lint::{Mode, check_value, class_of, show_byte, validate_value_known};
use super::table::{AiEntry, ai_len_for_prefix, lookup, meta};

/// ASCII 29, the group separator that stands for FNC1 inside the data.
pub(crate) const GS: u8 = 0x1d;

/// One parsed element: AI (table index) and the byte range of its value in the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Elem {
    pub idx: u16,
    pub start: u32,
    pub end: u32,
    /// Offset of the value in the original input (for error positions).
    pub pos: u32,
    /// Character classes shared by every byte of the value (`lint::class_of` flags, ANDed),
    /// so component checks can skip character scans that cannot fail. Sits in what would
    /// be padding; 0 means unknown.
    pub classes: u8,
}

/// Inline capacity: a pharma pack carries 4–6 AIs (01, 17, 10, 21, maybe 714/7003); a
/// small array keeps `Gs1Data` cheap to move. Longer codes spill to the heap.
const INLINE: usize = 8;

/// Elements in order. Typical codes have a handful of AIs, so they stay inline and a parse
/// allocates nothing but its result; longer lists spill to the heap.
#[derive(Debug, Clone, Default)]
pub(crate) struct ElemList {
    inline: [Elem; INLINE],
    len: usize,
    spill: Vec<Elem>,
}

impl ElemList {
    #[inline]
    pub(crate) fn push(&mut self, e: Elem) {
        if !self.spill.is_empty() {
            self.spill.push(e);
        } else if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = e;
            self.len += 1;
        } else {
            let mut v = Vec::with_capacity(INLINE * 2);
            v.extend_from_slice(&self.inline);
            v.push(e);
            self.spill = v;
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[Elem] {
        if self.spill.is_empty() {
            self.inline.get(..self.len).unwrap_or_default()
        } else {
            &self.spill
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }
}

/// The AI starting at `p`, with its table index and length.
#[inline]
fn ai_at(data: &[u8], p: usize) -> Option<(u16, &'static AiEntry, usize)> {
    let d0 = *data.get(p)?;
    let d1 = *data.get(p + 1)?;
    let len = ai_len_for_prefix(d0, d1)?;
    let (idx, e) = lookup(data.get(p..p + len)?)?;
    Some((idx, e, len))
}

fn unknown_ai(data: &[u8], p: usize, base: usize) -> Gs1Error {
    let end = (p + 4).min(data.len());
    let shown: String = data
        .get(p..end)
        .unwrap_or_default()
        .iter()
        .map(|&c| {
            if c == GS {
                "<GS>".to_owned()
            } else if c.is_ascii_graphic() {
                (c as char).to_string()
            } else {
                show_byte(c)
            }
        })
        .collect();
    let what = if data.get(p) == Some(&GS) {
        format!(
            "no AI where one should start (\"{shown}...\"): two separators in a row, or a separator at the start"
        )
    } else {
        format!("unknown AI at \"{shown}...\": no GS1 Application Identifier starts like this")
    };
    Gs1Error::plain(ErrorKind::UnknownAi, Some(base + p), &what)
}

/// Parses and validates an element string (the data after any symbology identifier).
/// `sub` is an extra byte to treat as GS; `base` is the offset of `data` in the input.
pub(crate) fn parse_element_string(
    data: &[u8],
    sub: Option<u8>,
    base: usize,
    out: &mut ElemList,
) -> Result<(), Gs1Error> {
    if data.is_empty() {
        return Err(Gs1Error::plain(
            ErrorKind::EmptyData,
            Some(base),
            "the code holds no data",
        ));
    }
    // A substitute that is absent is GS again: two plain compares per byte.
    let alt = sub.unwrap_or(GS);
    let is_sep = |c: &u8| *c == GS || *c == alt;
    let mut p = 0usize;
    while p < data.len() {
        let Some((idx, e, alen)) = ai_at(data, p) else {
            return Err(unknown_ai(data, p, base));
        };
        let vstart = p + alen;
        // Look for the separator only as far as the value could reach (one past its
        // maximum shows "too long"): scanning to the end each time would be quadratic.
        let m = meta(idx);
        let reach = match m.predefined {
            0 => usize::from(m.max) + 1,
            fixed => usize::from(fixed),
        };
        let window = data.get(vstart..).unwrap_or_default();
        let window = window.get(..reach.min(window.len())).unwrap_or_default();
        // One pass finds the separator and the character classes every byte shares, so
        // the value's character-set checks need not read it again.
        let mut len = window.len();
        let mut classes = !0u8;
        for (i, &c) in window.iter().enumerate() {
            if is_sep(&c) {
                len = i;
                break;
            }
            classes &= class_of(c);
        }
        let r = vstart + len;
        let v = data.get(vstart..r).unwrap_or_default();
        validate_value_known(e, v, base + vstart, Mode::Element, classes)?;
        out.push(Elem {
            idx,
            start: vstart as u32,
            end: r as u32,
            pos: (base + vstart) as u32,
            classes,
        });
        p = r;
        if data.get(p).is_some_and(is_sep) {
            p += 1;
        }
    }
    Ok(())
}

/// Whether `data` is entirely a valid sequence of element strings (per-element checks
/// only). Allocation-free; used by the missing-separator heuristic. Fills `out`.
pub(crate) fn parses_cleanly(data: &[u8], out: &mut ElemList) -> bool {
    out.clear();
    let mut p = 0usize;
    while p < data.len() {
        let Some((idx, e, alen)) = ai_at(data, p) else {
            return false;
        };
        let vstart = p + alen;
        let mut r = data.len();
        let fixed = meta(idx).predefined;
        if fixed != 0 {
            r = r.min(vstart + usize::from(fixed));
        }
        let v = data.get(vstart..r).unwrap_or_default();
        if check_value(e, v).is_err() {
            return false;
        }
        out.push(Elem {
            idx,
            start: vstart as u32,
            end: r as u32,
            pos: 0,
            classes: 0,
        });
        p = r;
    }
    p > 0
}
