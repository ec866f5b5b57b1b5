//! Per-element validation: component lengths, character sets (GenSpecs §7.11) and the
//! content checks ("linters") of the Syntax Dictionary. Association rules live in `assoc`.

use super::check_digit::{check_character_pair, mod10_check_digit_of_digits};
use super::codes::{ISO3166_ALPHA2, ISO3166_NUMERIC, ISO4217_NUMERIC};
use super::date::{days_in_month, month_name};
use std::fmt;

use super::error::{Detail, ErrorKind, Gs1Error};
use super::table::{AiEntry, Comp, Cset, Linter, meta};

/// Character classes as bit flags of a 256-entry table: one load and a mask per byte,
/// and indexing by a `u8` can never be out of bounds.
const C_N: u8 = 1;
const C_82: u8 = 2;
const C_39: u8 = 4;
const C_64: u8 = 8;
/// GS, the separator: lets the element splitter find the end of a value with the same
/// table load that gives the value's classes. No character set has it.
pub(crate) const C_SEP: u8 = 16;

const fn mark(t: &mut [u8; 256], chars: &[u8], flag: u8) {
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] |= flag;
        i += 1;
    }
}

const DIGITS: &[u8] = b"0123456789";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    mark(&mut t, DIGITS, C_N | C_82 | C_39 | C_64);
    mark(&mut t, UPPER, C_82 | C_39 | C_64);
    mark(&mut t, LOWER, C_82 | C_64);
    mark(&mut t, b"!\"%&'()*+,-./:;<=>?_", C_82);
    mark(&mut t, b"#-/", C_39);
    mark(&mut t, b"-_", C_64);
    t[0x1d] = C_SEP;
    t
};

/// The character classes (`C_*` flags) of byte `c`.
#[inline]
pub(crate) fn class_of(c: u8) -> u8 {
    CLASS[usize::from(c)]
}

/// The character classes every byte of `v` has.
#[inline]
pub(crate) fn classes_of(v: &[u8]) -> u8 {
    v.iter().fold(!0, |acc, &c| acc & class_of(c))
}

/// The class flag that character set `cset` requires of every byte (none for set 64,
/// whose `=` padding needs its own check).
#[inline]
fn cset_flag(cset: Cset) -> u8 {
    match cset {
        Cset::N => C_N,
        Cset::X => C_82,
        Cset::Y => C_39,
        Cset::Z => 0,
    }
}

/// Position of the first byte of `v` outside the class `flag`.
#[inline]
fn first_outside(v: &[u8], flag: u8) -> Option<usize> {
    // The common case (all valid) is a branch-light pass; the position only on failure.
    if v.iter().all(|&c| CLASS[usize::from(c)] & flag != 0) {
        None
    } else {
        v.iter().position(|&c| CLASS[usize::from(c)] & flag == 0)
    }
}

/// A failed check inside one component: kind, offset in the component, and what to say.
/// The message is only formatted when an error is really reported, so failed attempts on
/// the hot path (the missing-separator heuristic) never allocate.
pub(crate) type Fail = (ErrorKind, usize, Why);

/// The facts behind a failure, turned into words by [`Why::write`] when a message is
/// asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    Text(&'static str),
    NotDigit(u8),
    NotCset82(u8),
    NotCset39(u8),
    NotCset64(u8),
    Month(u8),
    Day {
        dd: u8,
        mm: u8,
    },
    Time {
        what: &'static str,
        val: u8,
        limit: u8,
    },
    CheckDigit {
        got: u8,
        want: u8,
    },
    PieceGtTotal {
        piece: u64,
        total: u64,
    },
    /// The component (quoted) is not in this list.
    NotInList(&'static str),
}

impl Why {
    /// Writes the words; `part` is the component, which `NotInList` quotes.
    pub(crate) fn write(self, f: &mut fmt::Formatter<'_>, part: &[u8]) -> fmt::Result {
        match self {
            Why::Text(t) => f.write_str(t),
            Why::NotDigit(c) => write!(f, "{} found where only digits are allowed", ShowByte(c)),
            Why::NotCset82(c) => write!(
                f,
                "{} is not allowed in GS1 data (character set 82)",
                ShowByte(c)
            ),
            Why::NotCset39(c) => write!(
                f,
                "{} is not allowed here (only A-Z, 0-9, '#', '-' and '/', character set 39)",
                ShowByte(c)
            ),
            Why::NotCset64(c) => write!(
                f,
                "{} is not allowed here (only A-Z, a-z, 0-9, '-' and '_', character set 64)",
                ShowByte(c)
            ),
            Why::Month(mm) => write!(f, "month {mm:02} does not exist (must be 01 to 12)"),
            Why::Day { dd: 29, mm: 2 } => {
                f.write_str("day 29 does not exist in February of a non-leap year")
            }
            Why::Day { dd, mm } => write!(f, "day {dd:02} does not exist in {}", month_name(mm)),
            Why::Time { what, val, limit } => {
                write!(f, "{what} {val:02} does not exist (must be 00 to {limit})")
            }
            Why::CheckDigit { got, want } => write!(
                f,
                "check digit is {} but should be {} (mistyped or misread digit?)",
                got as char, want as char
            ),
            Why::PieceGtTotal { piece, total } => {
                write!(f, "piece {piece} of {total} is impossible")
            }
            Why::NotInList(list) => {
                write!(f, "{} is not {list}", String::from_utf8_lossy(part))
            }
        }
    }
}

/// Printable form of a byte for messages: `<GS>`, `a space`, `'x'` or `byte 0xNN`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShowByte(pub u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x1d => f.write_str("<GS>"),
            b' ' => f.write_str("a space"),
            c @ 0x21..=0x7e => write!(f, "'{}'", c as char),
            c => write!(f, "byte 0x{c:02X}"),
        }
    }
}

fn check_cset(cset: Cset, v: &[u8]) -> Result<(), Fail> {
    let (flag, kind, why): (u8, ErrorKind, fn(u8) -> Why) = match cset {
        Cset::N => (C_N, ErrorKind::BadCharsetNumeric, Why::NotDigit),
        Cset::X => (C_82, ErrorKind::BadCharsetCset82, Why::NotCset82),
        Cset::Y => (C_39, ErrorKind::BadCharsetCset39, Why::NotCset39),
        Cset::Z => {
            let pads = v.iter().rev().take_while(|&&c| c == b'=').count();
            let len = v.len() - pads;
            if pads > 2 || (pads > 0 && !v.len().is_multiple_of(3)) {
                return Err((
                    ErrorKind::BadCset64Padding,
                    len,
                    Why::Text("wrong number of '=' padding characters (character set 64)"),
                ));
            }
            return match first_outside(v.get(..len).unwrap_or_default(), C_64) {
                None => Ok(()),
                Some(i) => Err((ErrorKind::BadCharsetCset64, i, Why::NotCset64(byte(v, i)))),
            };
        }
    };
    match first_outside(v, flag) {
        None => Ok(()),
        Some(i) => Err((kind, i, why(byte(v, i)))),
    }
}

#[inline]
fn byte(v: &[u8], i: usize) -> u8 {
    v.get(i).copied().unwrap_or(0)
}

#[inline]
fn two_digits(v: &[u8], i: usize) -> Option<u8> {
    match (v.get(i), v.get(i + 1)) {
        (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some((a - b'0') * 10 + (b - b'0'))
        }
        _ => None,
    }
}

fn bad_value(off: usize, what: &'static str) -> Fail {
    (ErrorKind::InvalidValue, off, Why::Text(what))
}

/// Checks `YYMMDD` (or `YYYYMMDD` when `four_digit_year`). Leap years follow the engine:
/// with two digits, February 29 is valid when `YY` is divisible by 4.
fn check_date(v: &[u8], allow_day_zero: bool, four_digit_year: bool) -> Result<(), Fail> {
    let (year, m_at) = if four_digit_year {
        let hi = two_digits(v, 0).unwrap_or(0);
        let lo = two_digits(v, 2).unwrap_or(0);
        (u16::from(hi) * 100 + u16::from(lo), 4)
    } else {
        // 2000 + YY has the same leap-year answer as the engine's YY % 4 rule.
        (2000 + u16::from(two_digits(v, 0).unwrap_or(0)), 2)
    };
    let mm = two_digits(v, m_at).unwrap_or(0);
    let dd = two_digits(v, m_at + 2).unwrap_or(0);
    if !(1..=12).contains(&mm) {
        return Err((ErrorKind::InvalidDateMonth, m_at, Why::Month(mm)));
    }
    if dd == 0 {
        if allow_day_zero {
            return Ok(());
        }
        return Err((
            ErrorKind::InvalidDateDay,
            m_at + 2,
            Why::Text("day 00 is not allowed in this date"),
        ));
    }
    if dd > days_in_month(year, mm) {
        return Err((ErrorKind::InvalidDateDay, m_at + 2, Why::Day { dd, mm }));
    }
    Ok(())
}

fn check_time_part(v: &[u8], at: usize, limit: u8, what: &'static str) -> Result<(), Fail> {
    match two_digits(v, at) {
        Some(x) if x <= limit => Ok(()),
        x => Err((
            ErrorKind::InvalidTime,
            at,
            Why::Time {
                what,
                val: x.unwrap_or(0),
                limit,
            },
        )),
    }
}

fn check_gcp(v: &[u8], skip: usize) -> Result<(), Fail> {
    if v.len() < skip + 4 {
        return Err((
            ErrorKind::GcpTooShort,
            0,
            Why::Text("too short to hold a GS1 Company Prefix (at least 4 digits)"),
        ));
    }
    match v
        .iter()
        .skip(skip)
        .take(4)
        .position(|c| !c.is_ascii_digit())
    {
        None => Ok(()),
        Some(i) => Err((
            ErrorKind::BadGcpPrefix,
            skip + i,
            Why::Text("the GS1 Company Prefix must start with 4 digits"),
        )),
    }
}

fn number(v: &[u8]) -> u64 {
    v.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10)
            .saturating_add(u64::from(d.wrapping_sub(b'0') % 10))
    })
}

fn check_iban(v: &[u8]) -> Result<(), Fail> {
    let bad = |what: &'static str| Err(bad_value(0, what));
    if v.len() < 5 {
        return bad("not a valid IBAN: too short");
    }
    let cc = std::str::from_utf8(v.get(..2).unwrap_or_default()).unwrap_or("");
    if ISO3166_ALPHA2.binary_search(&cc).is_err() {
        return bad("not a valid IBAN: unknown country code");
    }
    if !v
        .get(2..4)
        .unwrap_or_default()
        .iter()
        .all(u8::is_ascii_digit)
    {
        return bad("not a valid IBAN: check digits must be digits");
    }
    if !v
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return bad("not a valid IBAN: only digits and capital letters are allowed");
    }
    // ISO 13616: move the first four characters to the end, letters = 10..35, mod 97 == 1.
    let mut rem = 0u32;
    for &c in v.iter().skip(4).chain(v.iter().take(4)) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    if rem != 1 {
        return bad("not a valid IBAN: wrong check digits");
    }
    Ok(())
}

fn run_linter(l: Linter, v: &[u8]) -> Result<(), Fail> {
    match l {
        Linter::Csum => match v.split_last() {
            Some((&got, body)) => {
                // Csum only ever sits on a character set N component, whose digits were
                // checked just before the linters run.
                let want = mod10_check_digit_of_digits(body);
                if got == want {
                    Ok(())
                } else {
                    Err((
                        ErrorKind::BadCheckDigit,
                        v.len() - 1,
                        Why::CheckDigit { got, want },
                    ))
                }
            }
            None => Ok(()),
        },
        Linter::CsumAlpha => {
            if v.len() < 2 {
                return Err((
                    ErrorKind::BadCheckCharacters,
                    0,
                    Why::Text("too short to hold its two check characters"),
                ));
            }
            let (data, pair) = v.split_at(v.len() - 2);
            match check_character_pair(data) {
                Some(p) if p[..] == *pair => Ok(()),
                _ => Err((
                    ErrorKind::BadCheckCharacters,
                    v.len() - 2,
                    Why::Text("the two check characters at the end are wrong"),
                )),
            }
        }
        Linter::GcpPos1 => check_gcp(v, 0),
        Linter::GcpPos2 => check_gcp(v, 1),
        Linter::Yymmd0 => check_date(v, true, false),
        Linter::Yymmdd => check_date(v, false, false),
        Linter::Yyyymmdd => check_date(v, false, true),
        Linter::Hhmi => {
            check_time_part(v, 0, 23, "hour")?;
            check_time_part(v, 2, 59, "minute")
        }
        Linter::Hh => check_time_part(v, 0, 23, "hour"),
        Linter::Mi => check_time_part(v, 0, 59, "minute"),
        Linter::Ss => check_time_part(v, 0, 59, "second"),
        Linter::PieceOfTotal => {
            if !v.len().is_multiple_of(2) {
                return Err((
                    ErrorKind::PieceOfTotal,
                    0,
                    Why::Text("piece number and total must have the same length"),
                ));
            }
            let (p, t) = v.split_at(v.len() / 2);
            let (piece, total) = (number(p), number(t));
            if piece == 0 {
                Err((
                    ErrorKind::PieceOfTotal,
                    0,
                    Why::Text("piece number 0 is not allowed"),
                ))
            } else if total == 0 {
                Err((
                    ErrorKind::PieceOfTotal,
                    v.len() / 2,
                    Why::Text("piece total 0 is not allowed"),
                ))
            } else if piece > total {
                Err((
                    ErrorKind::PieceOfTotal,
                    0,
                    Why::PieceGtTotal { piece, total },
                ))
            } else {
                Ok(())
            }
        }
        Linter::NoZeroPrefix => {
            if v.len() > 1 && v.first() == Some(&b'0') {
                Err((ErrorKind::ZeroPrefix, 0, Why::Text("must not start with 0")))
            } else {
                Ok(())
            }
        }
        Linter::YesNo => match v {
            b"0" | b"1" => Ok(()),
            _ => Err((ErrorKind::YesNo, 0, Why::Text("must be 0 (no) or 1 (yes)"))),
        },
        Linter::Pcenc => {
            for (i, _) in v.iter().enumerate().filter(|(_, c)| **c == b'%') {
                let ok = matches!((v.get(i + 1), v.get(i + 2)),
                    (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit());
                if !ok {
                    return Err(bad_value(i, "'%' must be followed by two hex digits"));
                }
            }
            Ok(())
        }
        Linter::Iso3166 | Linter::Iso3166999 => {
            let n = number(v) as u16;
            if (l == Linter::Iso3166999 && n == 999) || ISO3166_NUMERIC.binary_search(&n).is_ok() {
                Ok(())
            } else {
                Err((
                    ErrorKind::InvalidCode,
                    0,
                    Why::NotInList("an ISO 3166 country code"),
                ))
            }
        }
        Linter::Iso3166Alpha2 => {
            let s = std::str::from_utf8(v).unwrap_or("");
            if ISO3166_ALPHA2.binary_search(&s).is_ok() {
                Ok(())
            } else {
                Err((
                    ErrorKind::InvalidCode,
                    0,
                    Why::NotInList("an ISO 3166 alpha-2 country code"),
                ))
            }
        }
        Linter::Iso4217 => {
            if ISO4217_NUMERIC.binary_search(&(number(v) as u16)).is_ok() {
                Ok(())
            } else {
                Err((
                    ErrorKind::InvalidCode,
                    0,
                    Why::NotInList("an ISO 4217 currency code"),
                ))
            }
        }
        Linter::Iso5218 => match v {
            b"0" | b"1" | b"2" | b"9" => Ok(()),
            _ => Err((
                ErrorKind::InvalidCode,
                0,
                Why::Text("sex must be 0, 1, 2 or 9 (ISO 5218)"),
            )),
        },
        Linter::Latitude => {
            if number(v) <= 1_800_000_000 {
                Ok(())
            } else {
                Err(bad_value(0, "latitude out of range"))
            }
        }
        Linter::Longitude => {
            if number(v) <= 3_600_000_000 {
                Ok(())
            } else {
                Err(bad_value(0, "longitude out of range"))
            }
        }
        Linter::Hyphen => match v.iter().position(|&c| c != b'-') {
            None => Ok(()),
            Some(i) => Err(bad_value(i, "only '-' is allowed here")),
        },
        Linter::NonZero => {
            if v.iter().all(|&c| c == b'0') {
                Err(bad_value(0, "must not be zero"))
            } else {
                Ok(())
            }
        }
        Linter::Winding => match v {
            b"0" | b"1" | b"9" => Ok(()),
            _ => Err(bad_value(0, "winding direction must be 0, 1 or 9")),
        },
        Linter::Zero => match v {
            b"0" => Ok(()),
            _ => Err(bad_value(0, "must be 0")),
        },
        Linter::ImporterIdx => match v {
            [c] if c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_' => Ok(()),
            _ => Err(bad_value(
                0,
                "importer index must be one of 0-9, A-Z, a-z, '-', '_'",
            )),
        },
        Linter::Iban => check_iban(v),
        Linter::HasNonDigit => {
            if v.iter().all(u8::is_ascii_digit) {
                Err(bad_value(0, "must contain at least one non-digit"))
            } else {
                Ok(())
            }
        }
        Linter::MediaType => match two_digits(v, 0) {
            Some(1..=10 | 80..=99) if v.len() == 2 => Ok(()),
            _ => Err((
                ErrorKind::InvalidCode,
                0,
                Why::Text("not an AIDC media type (01-10, 80-99)"),
            )),
        },
        Linter::PosInSeqSlash => match v {
            [p, b'/', t] if p.is_ascii_digit() && t.is_ascii_digit() && *p != b'0' && p <= t => {
                Ok(())
            }
            _ => Err(bad_value(0, "must be 'position/total', e.g. 1/2")),
        },
        // Not enumerated here: the UN/ECE Rec. 21 package type list and the GS1 US coupon
        // formats. The character set and length checks still apply to these AIs.
        Linter::PackageType | Linter::CouponCode | Linter::CouponPosOffer => Ok(()),
    }
}

/// How length failures are worded: element strings say "data", bracketed/DL "value".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Element,
    Value,
}

/// Why a value failed, without any formatting (cheap to produce and to discard).
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValueFail {
    Empty,
    Short,
    /// Offset of the first surplus character.
    Long(usize),
    /// A component check failed: kind, offset in the value, the facts, component range.
    Comp(ErrorKind, usize, Why, usize, usize),
}

/// Validates one value against its AI's components without allocating.
#[inline]
pub(crate) fn check_value(e: &AiEntry, v: &[u8]) -> Result<(), ValueFail> {
    check_value_known(e, v, 0)
}

/// [`check_value`] when `known` holds class flags that every byte of `v` is already known
/// to have: a component whose character set is among them skips its character scan (it
/// could not fail), everything else runs as usual.
#[inline(always)]
fn check_value_known(e: &AiEntry, v: &[u8], known: u8) -> Result<(), ValueFail> {
    if v.is_empty() {
        return Err(ValueFail::Empty);
    }
    // Nearly every AI has one component: the loop below, unrolled for that case, in the
    // same order of checks (component first, then a surplus).
    if let [c] = e.comps {
        if v.len() < usize::from(c.min) {
            return Err(ValueFail::Short);
        }
        let take = v.len().min(usize::from(c.max));
        let part = v.get(..take).unwrap_or_default();
        if let Err((kind, at, why)) = check_component(c, part, known) {
            return Err(ValueFail::Comp(kind, at, why, 0, take));
        }
        return if take < v.len() {
            Err(ValueFail::Long(take))
        } else {
            Ok(())
        };
    }
    let mut off = 0usize;
    for c in e.comps {
        let rem = v.len() - off;
        if rem == 0 && c.optional {
            break;
        }
        if rem < c.min as usize {
            return Err(ValueFail::Short);
        }
        let take = rem.min(c.max as usize);
        let part = v.get(off..off + take).unwrap_or_default();
        if let Err((kind, at, why)) = check_component(c, part, known) {
            return Err(ValueFail::Comp(kind, off + at, why, off, take));
        }
        off += take;
    }
    if off < v.len() {
        return Err(ValueFail::Long(off));
    }
    Ok(())
}

/// Validates one value against its AI's components. `pos` is the input offset of the value
/// (for error positions). In element mode a value longer than the format is `TooLong`.
/// `known` holds class flags every byte of `v` is known to have (0 if none are known, see
/// [`check_value_known`]).
#[inline]
pub(crate) fn validate_value_known(
    e: &'static AiEntry,
    v: &[u8],
    pos: usize,
    mode: Mode,
    known: u8,
) -> Result<(), Gs1Error> {
    match check_value_known(e, v, known) {
        Ok(()) => Ok(()),
        Err(f) => Err(value_error(e, v, pos, mode, f)),
    }
}

/// Turns a failed check into an error (kept out of line: the valid path never comes
/// here). Nothing is formatted: the error keeps the facts and quotes at most the
/// component that a list check rejected.
#[cold]
#[inline(never)]
fn value_error(e: &'static AiEntry, v: &[u8], pos: usize, mode: Mode, f: ValueFail) -> Gs1Error {
    match f {
        ValueFail::Empty => Gs1Error::at(
            ErrorKind::EmptyValue,
            e.ai,
            Some(pos),
            "the value is empty (two separators in a row, or a missing value?)",
        ),
        ValueFail::Short => too_short(e, v.len(), pos, mode),
        ValueFail::Long(off) => too_long(e, v.len(), pos + off, mode),
        ValueFail::Comp(kind, at, why, cs, cl) => {
            let err = Gs1Error::at_detail(kind, e.ai, Some(pos + at), Detail::Why(why));
            if matches!(why, Why::NotInList(_)) {
                err.quoting(v.get(cs..cs + cl).unwrap_or_default())
            } else {
                err
            }
        }
    }
}

#[inline(always)]
fn check_component(c: &Comp, part: &[u8], known: u8) -> Result<(), Fail> {
    let flag = cset_flag(c.cset);
    if flag == 0 || known & flag == 0 {
        check_cset(c.cset, part)?;
    }
    for &l in c.linters {
        run_linter(l, part)?;
    }
    Ok(())
}

pub(crate) fn too_short(e: &'static AiEntry, len: usize, pos: usize, mode: Mode) -> Gs1Error {
    length_error(ErrorKind::TooShort, e, len, pos, mode)
}

pub(crate) fn too_long(e: &'static AiEntry, len: usize, pos: usize, mode: Mode) -> Gs1Error {
    length_error(ErrorKind::TooLong, e, len, pos, mode)
}

/// A `TooShort` or `TooLong` error: the facts its message needs, worded on demand.
fn length_error(
    kind: ErrorKind,
    e: &'static AiEntry,
    len: usize,
    pos: usize,
    mode: Mode,
) -> Gs1Error {
    let (len, min, max) = (len as u32, e.min_len() as u16, e.max_len() as u16);
    let element = mode == Mode::Element;
    let detail = if kind == ErrorKind::TooShort {
        Detail::TooShort {
            len,
            min,
            max,
            element,
        }
    } else {
        Detail::TooLong {
            len,
            min,
            max,
            element,
        }
    };
    Gs1Error::at_detail(kind, e.ai, Some(pos), detail)
}

/// Bracketed / Digital Link pre-check of a whole value's length (`idx`: the table index
/// of `e`, whose precomputed lengths spare summing the components on every value).
pub(crate) fn check_total_length(
    e: &'static AiEntry,
    idx: u16,
    v: &[u8],
    pos: usize,
) -> Result<(), Gs1Error> {
    let m = meta(idx);
    if v.len() < usize::from(m.min) {
        return Err(too_short(e, v.len(), pos, Mode::Value));
    }
    if v.len() > usize::from(m.max) {
        return Err(too_long(e, v.len(), pos, Mode::Value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cset64_padding_rule() {
        for ok in ["", "123", "12", "12=", "1=="] {
            assert!(check_cset(Cset::Z, ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["===", "123=", "12==", "1===", "1234=", "123==", "12==="] {
            assert_eq!(
                check_cset(Cset::Z, bad.as_bytes()).map_err(|e| e.0),
                Err(ErrorKind::BadCset64Padding),
                "{bad}"
            );
        }
        assert_eq!(
            check_cset(Cset::Z, b"AB C").map_err(|e| e.0),
            Err(ErrorKind::BadCharsetCset64)
        );
    }

    #[test]
    fn dates() {
        assert!(check_date(b"240229", true, false).is_ok());
        assert!(check_date(b"000229", true, false).is_ok());
        assert_eq!(
            check_date(b"250229", true, false).map_err(|e| e.0),
            Err(ErrorKind::InvalidDateDay)
        );
        assert_eq!(
            check_date(b"291301", true, false).map_err(|e| e.0),
            Err(ErrorKind::InvalidDateMonth)
        );
        assert_eq!(
            check_date(b"290100", false, false).map_err(|e| e.0),
            Err(ErrorKind::InvalidDateDay)
        );
        assert_eq!(
            check_date(b"290431", true, false).map_err(|e| e.2),
            Err(Why::Day { dd: 31, mm: 4 })
        );
        assert!(check_date(b"20240229", false, true).is_ok());
        assert!(check_date(b"19000229", false, true).is_err());
    }

    #[test]
    fn small_linters() {
        assert!(run_linter(Linter::Iban, b"GB82WEST12345698765432").is_ok());
        assert!(run_linter(Linter::Iban, b"GB82WEST12345698765433").is_err());
        assert!(run_linter(Linter::Iso3166, b"276").is_ok());
        assert!(run_linter(Linter::Iso3166, b"999").is_err());
        assert!(run_linter(Linter::Iso3166999, b"999").is_ok());
        assert!(run_linter(Linter::Iso4217, b"978").is_ok());
        assert!(run_linter(Linter::Iso4217, b"001").is_err());
        assert!(run_linter(Linter::Iso3166Alpha2, b"DE").is_ok());
        assert!(run_linter(Linter::Iso3166Alpha2, b"XX").is_err());
        assert!(run_linter(Linter::MediaType, b"10").is_ok());
        assert!(run_linter(Linter::MediaType, b"11").is_err());
        assert!(run_linter(Linter::PosInSeqSlash, b"1/2").is_ok());
        assert!(run_linter(Linter::PosInSeqSlash, b"3/2").is_err());
        assert!(run_linter(Linter::NoZeroPrefix, b"0").is_ok());
        assert!(run_linter(Linter::NoZeroPrefix, b"01").is_err());
        assert!(run_linter(Linter::Pcenc, b"a%20b").is_ok());
        assert!(run_linter(Linter::Pcenc, b"a%2").is_err());
        assert!(run_linter(Linter::Hhmi, b"2359").is_ok());
        assert!(run_linter(Linter::Hhmi, b"2400").is_err());
    }
}
