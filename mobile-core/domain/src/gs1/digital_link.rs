//! GS1 Digital Link URIs (DL URI Syntax 1.2+): parsing, engine-compatible, and generation.
//! Short names (`/gtin/`, `?exp=`) of DL 1.0/1.1 are rejected, as the GS1 engine does.

use super::element::{Bytes, Elem, ElemList};
use super::error::{Detail, ErrorKind, Gs1Error};
use super::lint::{check_total_length, classes_of};
use super::table::{AiEntry, entry, is_ordered_subset, lookup, predefined_len};

/// Length of an exact Digital Link scheme prefix (`http://`, `https://`, `HTTP://`,
/// `HTTPS://`), or `None`.
pub(crate) fn dl_scheme_len(input: &[u8]) -> Option<usize> {
    for s in [&b"https://"[..], b"http://", b"HTTPS://", b"HTTP://"] {
        if input.starts_with(s) {
            return Some(s.len());
        }
    }
    None
}

/// Whether `input` starts with `http://` or `https://` in any letter case.
pub(crate) fn looks_like_http_uri(input: &[u8]) -> bool {
    let starts = |p: &[u8]| {
        input
            .get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    starts(b"http://") || starts(b"https://")
}

const fn bitmap(chars: &[u8]) -> u128 {
    let mut m = 0u128;
    let mut i = 0;
    while i < chars.len() {
        m |= 1u128 << chars[i];
        i += 1;
    }
    m
}

const URI_CHARS: u128 = bitmap(
    b"-._~:/?#[]@!$&'()*+,;=%0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
);

const fn byte_table(set: u128) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 128 {
        t[c] = (set >> c) & 1 == 1;
        c += 1;
    }
    t
}

/// The two sets as 256-entry tables: one load per byte instead of a 128-bit shift, and
/// indexing by a `u8` cannot go out of bounds.
static URI_TABLE: [bool; 256] = byte_table(URI_CHARS);
static DOMAIN_TABLE: [bool; 256] = byte_table(DOMAIN_CHARS);

/// What the first pass over a URI sees in a byte: an ordinary URI character, the '?' or
/// '#' it looks for, or a byte a URI cannot hold.
const SCAN_ILLEGAL: u8 = 0;
const SCAN_PLAIN: u8 = 1;
const SCAN_QUERY: u8 = 2;
const SCAN_FRAGMENT: u8 = 3;

static URI_SCAN: [u8; 256] = {
    let mut t = [SCAN_ILLEGAL; 256];
    let mut c = 0;
    while c < 256 {
        if URI_TABLE[c] {
            t[c] = SCAN_PLAIN;
        }
        c += 1;
    }
    t[b'?' as usize] = SCAN_QUERY;
    t[b'#' as usize] = SCAN_FRAGMENT;
    t
};

/// URI characters a domain may hold (no `_~?#@!$&'()*+,;=%`).
const DOMAIN_CHARS: u128 = URI_CHARS & !bitmap(b"_~?#@!$&'()*+,;=%");

#[inline]
fn domain_char_ok(c: u8) -> bool {
    DOMAIN_TABLE[usize::from(c)]
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `v` into `buf`. In the query, `+` means space. A `%` not followed by two
/// hex digits stays literal. `%00` is refused.
fn decode(v: &[u8], query: bool, buf: &mut Bytes) -> Result<(), ()> {
    // Most values have nothing to decode: copy them in one go.
    let special = |c: &u8| *c == b'%' || (query && *c == b'+');
    if !v.iter().any(special) {
        buf.extend_from_slice(v);
        return Ok(());
    }
    let mut i = 0;
    while let Some(&c) = v.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (
                v.get(i + 1).copied().and_then(hex),
                v.get(i + 2).copied().and_then(hex),
            )
        {
            let b = h * 16 + l;
            if b == 0 {
                return Err(());
            }
            buf.push(b);
            i += 3;
            continue;
        }
        buf.push(if query && c == b'+' { b' ' } else { c });
        i += 1;
    }
    Ok(())
}

/// The most AI/value pairs a path can usefully hold: a key and three qualifiers.
const MAX_PATH_PAIRS: usize = 4;

/// Parses a Digital Link URI into `buf` (decoded values) and `out` (path AIs, then query
/// AIs), applying all DL rules; component checks run afterwards on every element.
/// `base` is the offset of the URI in the input.
pub(crate) fn parse_digital_link(
    input: &[u8],
    base: usize,
    buf: &mut Bytes,
    out: &mut ElemList,
) -> Result<(), Gs1Error> {
    // One pass checks every character and finds the first '?' and '#', which only matter
    // past the domain (where a domain cannot hold them, it fails below anyway).
    // A table lookup and one branch per ordinary byte.
    let (mut first_q, mut first_hash) = (None, None);
    for (i, &c) in input.iter().enumerate() {
        match URI_SCAN[usize::from(c)] {
            SCAN_PLAIN => {}
            SCAN_QUERY => {
                first_q = first_q.or(Some(i));
            }
            SCAN_FRAGMENT => {
                first_hash = first_hash.or(Some(i));
            }
            _ => {
                return Err(Gs1Error::detail(
                    ErrorKind::DlIllegalChar,
                    Some(base + i),
                    Detail::IllegalUriChar(c),
                ));
            }
        }
    }
    let scheme = dl_scheme_len(input).unwrap_or(0);
    let rest = input.get(scheme..).unwrap_or_default();
    let no_path = || {
        Gs1Error::plain(
            ErrorKind::DlNoDomainOrPath,
            Some(base + scheme),
            "the URI needs a domain and a path such as /01/<GTIN>",
        )
    };
    let slash = rest.iter().position(|&c| c == b'/').ok_or_else(no_path)?;
    if slash == 0 {
        return Err(no_path());
    }
    let domain = rest.get(..slash).unwrap_or_default();
    if let Some(i) = domain.iter().position(|&c| !domain_char_ok(c)) {
        return Err(Gs1Error::plain(
            ErrorKind::DlBadDomain,
            Some(base + scheme + i),
            "the domain of the URI contains characters a domain cannot have",
        ));
    }
    let path_start = scheme + slash;
    // The fragment is dropped; a '?' inside it starts no query.
    let end = first_hash.unwrap_or(input.len());
    let tail = input.get(path_start..end).unwrap_or_default();
    let (path, query, query_start) = match first_q.filter(|&q| q < end) {
        Some(q) => (
            input.get(path_start..q).unwrap_or_default(),
            input.get(q + 1..end).unwrap_or_default(),
            q + 1,
        ),
        None => (tail, &b""[..], input.len()),
    };

    // Walk the path from the right in (AI, value) pairs until a primary key.
    let no_key = || {
        Gs1Error::plain(
            ErrorKind::DlNoKey,
            Some(base + path_start),
            "no GS1 key (such as /01/<GTIN> or /00/<SSCC>) found in the URI path",
        )
    };
    // (ai index, value slice, value offset in input), right to left.
    let mut pairs: [(u16, &[u8], usize); MAX_PATH_PAIRS] = [(0, &[], 0); MAX_PATH_PAIRS];
    let mut n_pairs = 0usize;
    let mut end = path.len();
    let mut too_many = false;
    loop {
        let vbeg = path
            .get(..end)
            .and_then(|p| p.iter().rposition(|&c| c == b'/'))
            .ok_or_else(no_key)?;
        let value = path.get(vbeg + 1..end).unwrap_or_default();
        let abeg = path
            .get(..vbeg)
            .and_then(|p| p.iter().rposition(|&c| c == b'/'))
            .ok_or_else(no_key)?;
        let ai = path.get(abeg + 1..vbeg).unwrap_or_default();
        let (idx, e) = lookup(ai).ok_or_else(no_key)?;
        match pairs.get_mut(n_pairs) {
            Some(slot) => {
                *slot = (idx, value, path_start + vbeg + 1);
                n_pairs += 1;
            }
            None => too_many = true,
        }
        if e.dl_pkey.is_some() {
            break;
        }
        end = abeg;
    }
    let pairs = pairs.get(..n_pairs).unwrap_or_default();

    // Path values, key first.
    for &(idx, value, off) in pairs.iter().rev() {
        let e = entry(idx);
        push_value(e, idx, value, false, base + off, buf, out)?;
    }
    let n_path = out.as_slice().len();

    // Query attributes.
    let mut off = query_start;
    for part in query.split(|&c| c == b'&') {
        let part_off = off;
        off += part.len() + 1;
        let Some(eq) = part.iter().position(|&c| c == b'=') else {
            continue; // a bare singleton is ignored
        };
        let (key, value) = (
            part.get(..eq).unwrap_or_default(),
            part.get(eq + 1..).unwrap_or_default(),
        );
        if key.is_empty() || !key.iter().all(u8::is_ascii_digit) {
            continue; // non-AI parameters (linkType, context, ...) are ignored
        }
        let Some((idx, e)) = lookup(key) else {
            return Err(Gs1Error::detail(
                ErrorKind::DlUnknownAi,
                Some(base + part_off),
                Detail::DlUnknownAi,
            )
            .quoting(key));
        };
        push_value(e, idx, value, true, base + part_off + eq + 1, buf, out)?;
    }

    // Key-qualifier sequence.
    let elems = out.as_slice();
    let path_elems = elems.get(..n_path).unwrap_or_default();
    let key = path_elems
        .first()
        .map(|el| entry(el.idx))
        .ok_or_else(no_key)?;
    let mut quals: [&str; MAX_PATH_PAIRS] = [""; MAX_PATH_PAIRS];
    for (slot, el) in quals.iter_mut().zip(path_elems.iter().skip(1)) {
        *slot = entry(el.idx).ai;
    }
    let quals = quals.get(..n_path.saturating_sub(1)).unwrap_or_default();
    if too_many || !key.valid_qualifier_seq(quals) {
        return Err(Gs1Error::detail(
            ErrorKind::DlBadKeyQualifierSeq,
            Some(base + path_start),
            Detail::BadQualifierSeq(key.ai),
        ));
    }

    // Duplicates anywhere in the URI.
    for (el, prev) in super::assoc::with_first_occurrence(elems) {
        if prev.is_some() {
            let ai = entry(el.idx).ai;
            return Err(Gs1Error::at(
                ErrorKind::DlDuplicateAi,
                ai,
                Some(el.pos as usize),
                "appears twice in the URI (not allowed in a Digital Link, even with the same value)",
            ));
        }
    }

    // Query AIs must be data attributes that cannot go into the path.
    for el in elems.iter().skip(n_path) {
        let e = entry(el.idx);
        if !e.dl_attr {
            return Err(Gs1Error::at(
                ErrorKind::DlNotDataAttribute,
                e.ai,
                Some(el.pos as usize),
                "is not allowed in the query of a Digital Link URI",
            ));
        }
        if could_be_qualifier(key, quals, e.ai) {
            return Err(Gs1Error::at_detail(
                ErrorKind::DlQualifierInQuery,
                e.ai,
                Some(el.pos as usize),
                Detail::QualifierInQuery(key.ai),
            ));
        }
    }
    Ok(())
}

/// Whether `ai` could be inserted among the path qualifiers `quals` of `key`.
fn could_be_qualifier(key: &AiEntry, quals: &[&str], ai: &str) -> bool {
    key.dl_pkey.is_some_and(|alts| {
        alts.iter()
            .any(|alt| alt.contains(&ai) && is_ordered_subset(quals, alt))
    })
}

fn push_value(
    e: &'static AiEntry,
    idx: u16,
    value: &[u8],
    query: bool,
    pos: usize,
    buf: &mut Bytes,
    out: &mut ElemList,
) -> Result<(), Gs1Error> {
    if value.is_empty() {
        let what = if query {
            "the value in the URI query is empty"
        } else {
            "the value in the URI path is empty"
        };
        return Err(Gs1Error::at(ErrorKind::DlEmptyValue, e.ai, Some(pos), what));
    }
    let start = buf.len();
    if decode(value, query, buf).is_err() {
        let what = if query {
            "the value in the URI query contains %00 (a null character)"
        } else {
            "the value in the URI path contains %00 (a null character)"
        };
        return Err(Gs1Error::at(ErrorKind::DlNull, e.ai, Some(pos), what));
    }
    let v = buf.get(start..buf.len());
    check_total_length(e, idx, v, pos)?;
    out.push(Elem {
        idx,
        start: start as u32,
        end: buf.len() as u32,
        pos: pos as u32,
        classes: classes_of(v),
    });
    Ok(())
}

/// Percent-encodes `v` for a DL URI: unreserved characters stay, everything else is `%XX`;
/// in the query a space is `+`.
fn encode_into(out: &mut String, v: &str, query: bool) {
    for &c in v.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
            out.push(c as char);
        } else if query && c == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(c >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(c & 15)]));
        }
    }
}

/// Builds a DL URI from `(entry, value)` pairs in data order (GS1 engine rules: first key,
/// the longest satisfied qualifier sequence, then data attributes with predefined-length
/// AIs first). `stem` is e.g. `https://id.gs1.org` (a bare domain gets `https://`).
pub(crate) fn generate(items: &[(&'static AiEntry, &str)], stem: &str) -> Result<String, Gs1Error> {
    let Some(&(key, key_value)) = items.iter().find(|(e, _)| e.dl_pkey.is_some()) else {
        return Err(Gs1Error::plain(
            ErrorKind::Conversion,
            None,
            "no GS1 key that a Digital Link URI can carry (such as a GTIN or SSCC)",
        ));
    };
    let present = |ai: &str| items.iter().find(|(e, _)| e.ai == ai).map(|&(_, v)| v);
    // Longest qualifier sequence the data satisfies; ties go to the lexically first.
    let mut best: Vec<&'static str> = Vec::new();
    for alt in key.dl_pkey.unwrap_or_default() {
        let cand: Vec<&'static str> = alt
            .iter()
            .copied()
            .filter(|q| present(q).is_some())
            .collect();
        if cand.len() > best.len() || (cand.len() == best.len() && !cand.is_empty() && cand < best)
        {
            best = cand;
        }
    }
    let stem = stem.trim_end_matches('/');
    let mut uri = String::with_capacity(64);
    if dl_scheme_len(stem.as_bytes()).is_none() {
        uri.push_str("https://");
    }
    uri.push_str(stem);
    uri.push('/');
    uri.push_str(key.ai);
    uri.push('/');
    encode_into(&mut uri, key_value, false);
    for q in &best {
        uri.push('/');
        uri.push_str(q);
        uri.push('/');
        encode_into(&mut uri, present(q).unwrap_or_default(), false);
    }
    let in_path = |ai: &str| ai == key.ai || best.contains(&ai);
    let mut attrs: Vec<(&'static AiEntry, &str)> = Vec::new();
    for &(e, v) in items {
        if in_path(e.ai) || attrs.iter().any(|(x, _)| x.ai == e.ai) {
            continue;
        }
        if !e.dl_attr {
            return Err(Gs1Error::detail(
                ErrorKind::Conversion,
                None,
                Detail::NotInDl {
                    ai: e.ai,
                    key: key.ai,
                },
            ));
        }
        attrs.push((e, v));
    }
    let is_fixed = |e: &AiEntry| {
        let b = e.ai.as_bytes();
        predefined_len(b[0], b[1]).is_some()
    };
    let mut sep = '?';
    for pass_fixed in [true, false] {
        for (e, v) in attrs.iter().filter(|(e, _)| is_fixed(e) == pass_fixed) {
            uri.push(sep);
            sep = '&';
            uri.push_str(e.ai);
            uri.push('=');
            encode_into(&mut uri, v, true);
        }
    }
    Ok(uri)
}
