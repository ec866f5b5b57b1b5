//! Element strings (GenSpecs §7.8): AI data as sent by GS1 DataMatrix, GS1-128, GS1 QR,
//! DataBar and DotCode scanners, with GS (0x1D) after every field that needs FNC1.
//! Also the allocation-free list of parsed elements that every form produces.

use super::error::{Detail, ErrorKind, Gs1Error};
use super::lint::{C_SEP, Mode, check_value, class_of, validate_value_known};
use super::table::{AiEntry, ai_at_start, meta};

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
/// allocates nothing; longer lists spill to the heap.
#[derive(Debug, Clone)]
pub(crate) struct ElemList {
    inline: [Elem; INLINE],
    len: usize,
    spill: Vec<Elem>,
}

impl Default for ElemList {
    // By hand: the derived one builds the eight inline elements one by one on every parse.
    fn default() -> Self {
        const EMPTY: Elem = Elem {
            idx: 0,
            start: 0,
            end: 0,
            pos: 0,
            classes: 0,
        };
        ElemList {
            inline: [EMPTY; INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }
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

/// Inline capacity of [`Bytes`]: a pharma pack's element string is 40–70 bytes, Digital
/// Link values fewer; longer data spills to the heap.
const INLINE_BYTES: usize = 128;

/// The AI values of one parse (or its whole element string), inline up to
/// [`INLINE_BYTES`] and on the heap beyond: a typical parse allocates nothing, neither
/// for its result nor on its way to an error. Only validated bytes are ever pushed, so the
/// values are ASCII (the accessors still check, without `unsafe`).
#[derive(Clone)]
pub(crate) struct Bytes {
    len: usize,
    inline: [u8; INLINE_BYTES],
    /// Everything, once spilled (then `inline` is unused).
    spill: Vec<u8>,
}

impl Default for Bytes {
    fn default() -> Self {
        Bytes {
            len: 0,
            inline: [0; INLINE_BYTES],
            spill: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl Bytes {
    #[inline]
    fn spilled(&self) -> bool {
        self.spill.capacity() != 0
    }

    #[cold]
    #[inline(never)]
    fn spill_for(&mut self, more: usize) {
        let mut v = Vec::with_capacity((self.len + more).max(INLINE_BYTES * 2));
        v.extend_from_slice(self.inline.get(..self.len).unwrap_or_default());
        self.spill = v;
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        if self.spilled() {
            self.spill.len()
        } else {
            self.len
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.spilled() {
            &self.spill
        } else {
            self.inline.get(..self.len).unwrap_or_default()
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, c: u8) {
        if !self.spilled() {
            if let Some(slot) = self.inline.get_mut(self.len) {
                *slot = c;
                self.len += 1;
                return;
            }
            self.spill_for(1);
        }
        self.spill.push(c);
    }

    #[inline]
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        if !self.spilled() {
            if let Some(dst) = self.inline.get_mut(self.len..self.len + data.len()) {
                dst.copy_from_slice(data);
                self.len += data.len();
                return;
            }
            self.spill_for(data.len());
        }
        self.spill.extend_from_slice(data);
    }

    /// `data` with every `sub` byte replaced by GS.
    pub(crate) fn extend_replacing(&mut self, data: &[u8], sub: u8) {
        for &c in data {
            self.push(if c == sub { GS } else { c });
        }
    }

    /// The bytes in `range`, empty if it is out of bounds.
    #[inline]
    pub(crate) fn get(&self, range: std::ops::Range<usize>) -> &[u8] {
        self.as_slice().get(range).unwrap_or_default()
    }

    /// The bytes in `range` as text ("" if out of bounds or not UTF-8, which the parsers
    /// never let in).
    #[inline]
    pub(crate) fn str(&self, range: std::ops::Range<usize>) -> &str {
        std::str::from_utf8(self.get(range)).unwrap_or_default()
    }
}

/// The AI starting at `p`, with its table index and length.
#[inline]
fn ai_at(data: &[u8], p: usize) -> Option<(u16, &'static AiEntry, usize)> {
    ai_at_start(data.get(p..)?)
}

/// No AI starts at `p`: the error quotes the next four bytes. Out of line: the valid
/// path never comes here.
#[cold]
#[inline(never)]
fn unknown_ai(data: &[u8], p: usize, base: usize) -> Gs1Error {
    let end = (p + 4).min(data.len());
    Gs1Error::detail(ErrorKind::UnknownAi, Some(base + p), Detail::UnknownAiAt)
        .quoting(data.get(p..end).unwrap_or_default())
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
        if sub.is_none() {
            // The usual case: GS is the only separator, marked in the class table.
            for (i, &c) in window.iter().enumerate() {
                let k = class_of(c);
                if k & C_SEP != 0 {
                    len = i;
                    break;
                }
                classes &= k;
            }
        } else {
            for (i, &c) in window.iter().enumerate() {
                if is_sep(&c) {
                    len = i;
                    break;
                }
                classes &= class_of(c);
            }
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
