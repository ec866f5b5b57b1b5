//! Types of the compiled-in AI table and O(1) lookups over it.
//!
//! The data itself is in `ai_table.rs`, generated from the GS1 Barcode Syntax Dictionary;
//! this module owns the shapes and the indexes (built at compile time, so no start-up cost).

use super::ai_table::ENTRIES;

/// Character set of a component (GenSpecs §7.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cset {
    /// Digits only.
    N,
    /// GS1 AI encodable character set 82.
    X,
    /// Character set 39.
    Y,
    /// Character set 64 (file-safe base64).
    Z,
}

/// A content check ("linter") from the Syntax Dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linter {
    Csum,
    CsumAlpha,
    GcpPos1,
    GcpPos2,
    Yymmd0,
    Yymmdd,
    Yyyymmdd,
    Hhmi,
    Hh,
    Mi,
    Ss,
    PieceOfTotal,
    NoZeroPrefix,
    YesNo,
    Pcenc,
    Iso3166,
    Iso3166999,
    Iso3166Alpha2,
    Iso4217,
    Iso5218,
    Latitude,
    Longitude,
    Hyphen,
    NonZero,
    Winding,
    Zero,
    ImporterIdx,
    PackageType,
    Iban,
    HasNonDigit,
    CouponCode,
    CouponPosOffer,
    MediaType,
    PosInSeqSlash,
}

/// One component of an AI's data field, e.g. `N6,yymmd0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Comp {
    pub cset: Cset,
    pub min: u8,
    pub max: u8,
    pub optional: bool,
    pub linters: &'static [Linter],
}

/// An AI pattern in `req`/`ex` lists; `n` is a wildcard digit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pat {
    pub len: u8,
    pub b: [u8; 4],
    /// For a pattern without wildcards: the AI's number (to find it in O(1)).
    pub exact: Option<u16>,
}

impl Pat {
    pub(crate) const fn new(s: &str) -> Pat {
        let bytes = s.as_bytes();
        let mut b = [0u8; 4];
        let mut i = 0;
        let mut n = 0u16;
        let mut wild = false;
        while i < bytes.len() && i < 4 {
            b[i] = bytes[i];
            if bytes[i] == b'n' {
                wild = true;
            } else {
                n = n * 10 + (bytes[i] - b'0') as u16;
            }
            i += 1;
        }
        Pat {
            len: bytes.len() as u8,
            b,
            exact: if wild { None } else { Some(n) },
        }
    }

    /// Whether the AI `ai` matches this pattern.
    #[inline]
    pub(crate) fn matches(&self, ai: &str) -> bool {
        let a = ai.as_bytes();
        if a.len() != self.len as usize {
            return false;
        }
        a.iter()
            .zip(self.b.iter())
            .all(|(&x, &p)| p == b'n' || p == x)
    }

    /// The table index of the AI this pattern names exactly, if it is in the table.
    #[inline]
    pub(crate) fn exact_index(&self) -> Option<Option<u16>> {
        let n = self.exact?;
        let i = INDEX.get(usize::from(n)).copied().unwrap_or(0);
        Some((i != 0 && AI_LEN.get(usize::from(i - 1)).copied() == Some(self.len)).then(|| i - 1))
    }
}

/// One `req=` token: satisfied when every AI of at least one group is present.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    /// The token as written in the dictionary, for messages.
    pub text: &'static str,
    pub groups: &'static [&'static [Pat]],
}

/// One AI of the dictionary.
#[derive(Debug)]
pub(crate) struct AiEntry {
    pub ai: &'static str,
    /// `*` flag: a predefined-length AI per the dictionary (informational; FNC1 decisions
    /// use the frozen prefix table of GenSpecs §7.8, see [`predefined_len`]).
    #[cfg_attr(not(test), allow(dead_code))]
    pub predefined: bool,
    /// `?` flag: permitted as a Digital Link data attribute.
    pub dl_attr: bool,
    pub comps: &'static [Comp],
    pub req: &'static [Req],
    pub ex: &'static [Pat],
    /// `dlpkey`: `Some` for a Digital Link primary key, with its qualifier alternatives.
    pub dl_pkey: Option<&'static [&'static [&'static str]]>,
    pub title: &'static str,
}

impl AiEntry {
    /// Sum of the minimum lengths of the mandatory components.
    pub(crate) fn min_len(&self) -> usize {
        self.comps
            .iter()
            .filter(|c| !c.optional)
            .map(|c| c.min as usize)
            .sum()
    }

    /// Sum of the maximum lengths of all components.
    pub(crate) fn max_len(&self) -> usize {
        self.comps.iter().map(|c| c.max as usize).sum()
    }

    /// Whether a DL qualifier sequence `quals` (AIs in path order) is valid for this key.
    pub(crate) fn valid_qualifier_seq(&self, quals: &[&str]) -> bool {
        let Some(alts) = self.dl_pkey else {
            return false;
        };
        if quals.is_empty() {
            return true;
        }
        alts.iter().any(|alt| is_ordered_subset(quals, alt))
    }
}

/// Whether `sub` appears in `seq` in the same relative order.
pub(crate) fn is_ordered_subset(sub: &[&str], seq: &[&str]) -> bool {
    let mut it = seq.iter();
    sub.iter().all(|s| it.any(|x| x == s))
}

const fn num(ai: &str) -> usize {
    let b = ai.as_bytes();
    let mut n = 0usize;
    let mut i = 0;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    n
}

/// AI number (0..=9999) → entry index + 1 (0 = none). Unique because the AI length is fixed
/// by its first two digits, and 3/4-digit AIs never start with `0`.
static INDEX: [u16; 10000] = {
    let mut idx = [0u16; 10000];
    let mut i = 0;
    while i < ENTRIES.len() {
        idx[num(ENTRIES[i].ai)] = (i + 1) as u16;
        i += 1;
    }
    idx
};

/// Number of AIs in the table.
pub(crate) const N_ENTRIES: usize = ENTRIES.len();

/// Facts about each AI that the hot paths need, precomputed at compile time so a parse
/// never sums components or compares AI strings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// Sum of the minimum lengths of the mandatory components.
    pub min: u16,
    /// Sum of the maximum lengths of all components.
    pub max: u16,
    /// Predefined data length of GenSpecs §7.8 (no separator follows), 0 if none.
    pub predefined: u8,
}

const fn sum_len(comps: &[Comp], max: bool) -> u16 {
    let mut n = 0u16;
    let mut i = 0;
    while i < comps.len() {
        if max {
            n += comps[i].max as u16;
        } else if !comps[i].optional {
            n += comps[i].min as u16;
        }
        i += 1;
    }
    n
}

const fn predefined_of(ai: &str) -> u8 {
    let b = ai.as_bytes();
    match predefined_len(b[0], b[1]) {
        Some(l) => l as u8,
        None => 0,
    }
}

static META: [Meta; N_ENTRIES] = {
    let mut m = [Meta {
        min: 0,
        max: 0,
        predefined: 0,
    }; N_ENTRIES];
    let mut i = 0;
    while i < N_ENTRIES {
        m[i] = Meta {
            min: sum_len(ENTRIES[i].comps, false),
            max: sum_len(ENTRIES[i].comps, true),
            predefined: predefined_of(ENTRIES[i].ai),
        };
        i += 1;
    }
    m
};

/// The precomputed facts of the entry at index `i`.
#[inline]
pub(crate) fn meta(i: u16) -> Meta {
    META.get(usize::from(i)).copied().unwrap_or(Meta {
        min: 0,
        max: 0,
        predefined: 0,
    })
}

/// Table index of `ai`, for the few AIs the code names (computed at compile time; a
/// misspelt AI fails the build).
pub(crate) const fn index_of(ai: &str) -> u16 {
    let i = INDEX[num(ai)];
    assert!(i != 0, "AI not in the table");
    i - 1
}

/// Most patterns in a list, for the precomputed rule lists of [`FastRules`].
const FAST_MAX: usize = 8;

/// An AI's association rules in the shape nearly all of them have, as table indexes
/// worked out at compile time: `ex` with exact AIs only, `req` empty or one token of
/// single exact AIs (`req=01,02,03,8006,8026`). The checks of a typical code then test a
/// few bits instead of matching patterns; the rest take the general path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastRules {
    /// `ex` holds the entry's whole `ex` list (patterns naming no AI of the table left
    /// out: they match nothing).
    pub ex_fast: bool,
    pub ex: [u16; FAST_MAX],
    pub n_ex: u8,
    /// `req` holds the entry's whole requisite: met when any of these is present (none
    /// listed with `has_req`: never met).
    pub req_fast: bool,
    pub has_req: bool,
    pub req: [u16; FAST_MAX],
    pub n_req: u8,
}

const PAT_WILD: u32 = u32::MAX;
const PAT_ABSENT: u32 = u32::MAX - 1;

/// A pattern's table index, or [`PAT_WILD`] / [`PAT_ABSENT`] (exact, but no such AI).
const fn pat_index(p: &Pat) -> u32 {
    match p.exact {
        None => PAT_WILD,
        Some(n) => {
            let i = INDEX[n as usize];
            if i != 0 && ENTRIES[(i - 1) as usize].ai.len() == p.len as usize {
                (i - 1) as u32
            } else {
                PAT_ABSENT
            }
        }
    }
}

const NO_RULES: FastRules = FastRules {
    ex_fast: false,
    ex: [0; FAST_MAX],
    n_ex: 0,
    req_fast: false,
    has_req: false,
    req: [0; FAST_MAX],
    n_req: 0,
};

/// Adds pattern `p` to a precomputed list: false when it does not fit the fast shape (a
/// wildcard, or more than [`FAST_MAX`] AIs). An exact AI the table lacks matches
/// nothing and is left out.
const fn add_exact(list: &mut [u16; FAST_MAX], n: &mut u8, p: &Pat) -> bool {
    match pat_index(p) {
        PAT_WILD => false,
        PAT_ABSENT => true,
        idx => {
            if (*n as usize) < FAST_MAX {
                list[*n as usize] = idx as u16;
                *n += 1;
                true
            } else {
                false
            }
        }
    }
}

const fn fast_rules_of(e: &AiEntry) -> FastRules {
    let mut f = NO_RULES;
    // ex: every pattern exact.
    f.ex_fast = true;
    let mut i = 0;
    while i < e.ex.len() {
        if !add_exact(&mut f.ex, &mut f.n_ex, &e.ex[i]) {
            f.ex_fast = false;
        }
        i += 1;
    }
    // req: none, or one token whose groups are single exact patterns.
    if e.req.is_empty() {
        f.req_fast = true;
    } else if e.req.len() == 1 {
        f.req_fast = true;
        f.has_req = true;
        let groups = e.req[0].groups;
        let mut g = 0;
        while g < groups.len() {
            if groups[g].len() != 1 || !add_exact(&mut f.req, &mut f.n_req, &groups[g][0]) {
                f.req_fast = false;
            }
            g += 1;
        }
    }
    f
}

static FAST_RULES: [FastRules; N_ENTRIES] = {
    let mut t = [NO_RULES; N_ENTRIES];
    let mut i = 0;
    while i < N_ENTRIES {
        t[i] = fast_rules_of(&ENTRIES[i]);
        i += 1;
    }
    t
};

/// The precomputed rule lists of the entry at index `i` (none for an unknown index).
#[inline]
pub(crate) fn fast_rules(i: u16) -> &'static FastRules {
    FAST_RULES.get(usize::from(i)).unwrap_or(&NO_RULES)
}

/// Length of each AI, by table index (a compact copy: pattern lookups need only this).
static AI_LEN: [u8; N_ENTRIES] = {
    let mut t = [0u8; N_ENTRIES];
    let mut i = 0;
    while i < N_ENTRIES {
        t[i] = ENTRIES[i].ai.len() as u8;
        i += 1;
    }
    t
};

/// Two-digit prefix → AI length (0 = no AI starts with it).
static PREFIX_LEN: [u8; 100] = {
    let mut t = [0u8; 100];
    let mut i = 0;
    while i < ENTRIES.len() {
        let b = ENTRIES[i].ai.as_bytes();
        let p = ((b[0] - b'0') * 10 + (b[1] - b'0')) as usize;
        t[p] = b.len() as u8;
        i += 1;
    }
    t
};

/// AI length for the two-digit prefix `d0 d1` (ASCII digits), or `None` if no AI has it.
#[inline]
pub(crate) fn ai_len_for_prefix(d0: u8, d1: u8) -> Option<usize> {
    if !d0.is_ascii_digit() || !d1.is_ascii_digit() {
        return None;
    }
    match PREFIX_LEN.get(((d0 - b'0') * 10 + (d1 - b'0')) as usize) {
        Some(&0) | None => None,
        Some(&l) => Some(l as usize),
    }
}

/// The AI at the start of `data` (element string splitting): table index, entry and AI
/// length. [`ai_len_for_prefix`] and [`lookup`] in one, reading each digit once: it runs
/// for every AI of every element string.
#[inline]
pub(crate) fn ai_at_start(data: &[u8]) -> Option<(u16, &'static AiEntry, usize)> {
    let v0 = data.first()?.wrapping_sub(b'0');
    let v1 = data.get(1)?.wrapping_sub(b'0');
    if v0 > 9 || v1 > 9 {
        return None;
    }
    let mut n = usize::from(v0 * 10 + v1);
    let len = usize::from(*PREFIX_LEN.get(n)?);
    if len == 0 {
        return None;
    }
    for &d in data.get(2..len)? {
        let v = d.wrapping_sub(b'0');
        if v > 9 {
            return None;
        }
        n = n * 10 + usize::from(v);
    }
    let i = usize::from(*INDEX.get(n)?).checked_sub(1)?;
    // As in `lookup`: the lengths must agree exactly ("001" is not "01").
    if usize::from(*AI_LEN.get(i)?) != len {
        return None;
    }
    Some((i as u16, ENTRIES.get(i)?, len))
}

/// Data length of the predefined-length prefixes of GenSpecs §7.8 (frozen by the standard,
/// deliberately not derived from the dictionary).
#[inline]
pub(crate) const fn predefined_len(d0: u8, d1: u8) -> Option<usize> {
    match (d0, d1) {
        (b'0', b'0') => Some(18),
        (b'0', b'1' | b'2' | b'3') => Some(14),
        (b'0', b'4') => Some(16),
        (b'1', b'1'..=b'9') => Some(6),
        (b'2', b'0') => Some(2),
        (b'3', b'1'..=b'6') => Some(6),
        (b'4', b'1') => Some(13),
        _ => None,
    }
}

/// Looks up an AI given exactly its digits. `None` for anything not in the dictionary.
#[inline]
pub(crate) fn lookup(ai: &[u8]) -> Option<(u16, &'static AiEntry)> {
    if ai.len() < 2 || ai.len() > 4 || !ai.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = ai.iter().fold(0usize, |n, &d| n * 10 + (d - b'0') as usize);
    let i = *INDEX.get(n)?;
    if i == 0 {
        return None;
    }
    let e = ENTRIES.get(i as usize - 1)?;
    // Guards against e.g. "001" vs "01": lengths must agree exactly.
    (e.ai.len() == ai.len()).then_some((i - 1, e))
}

/// The entry at an index returned by [`lookup`].
#[inline]
pub(crate) fn entry(i: u16) -> &'static AiEntry {
    // Indexes only come from `lookup`, so this is in range; fall back to the first entry
    // rather than panic if that invariant is ever broken.
    ENTRIES.get(i as usize).unwrap_or(&ENTRIES[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_lexical_order() {
        // `assoc` sorts AIs by table index, which relies on this.
        assert!(ENTRIES.windows(2).all(|w| w[0].ai < w[1].ai));
    }

    #[test]
    fn dictionary_star_flags_agree_with_the_frozen_prefix_table() {
        for e in ENTRIES {
            let b = e.ai.as_bytes();
            assert_eq!(
                e.predefined,
                predefined_len(b[0], b[1]).is_some(),
                "AI {}",
                e.ai
            );
            if let Some(l) = predefined_len(b[0], b[1]) {
                assert_eq!((e.min_len(), e.max_len()), (l, l), "AI {}", e.ai);
            }
        }
    }

    #[test]
    fn ai_at_start_agrees_with_prefix_and_lookup() {
        let two_step = |d: &[u8]| {
            let len = ai_len_for_prefix(*d.first()?, *d.get(1)?)?;
            let (i, e) = lookup(d.get(..len)?)?;
            Some((i, e.ai, len))
        };
        for n in 0..100_000u32 {
            for width in 1..=5 {
                let s = format!("{n:0width$}X");
                let d = s.as_bytes();
                let fast = ai_at_start(d).map(|(i, e, l)| (i, e.ai, l));
                assert_eq!(fast, two_step(d), "{s}");
            }
        }
        assert!(ai_at_start(b"1").is_none());
        assert!(ai_at_start(b"a1").is_none());
    }

    #[test]
    fn lookups() {
        assert_eq!(lookup(b"01").map(|(_, e)| e.ai), Some("01"));
        assert_eq!(lookup(b"8030").map(|(_, e)| e.title), Some("DIGSIG"));
        assert!(lookup(b"001").is_none());
        assert!(lookup(b"23").is_none());
        assert!(lookup(b"1A").is_none());
        assert_eq!(ai_len_for_prefix(b'2', b'4'), Some(3));
        assert_eq!(ai_len_for_prefix(b'8', b'0'), Some(4));
        assert_eq!(ai_len_for_prefix(b'1', b'9'), None);
    }
}
