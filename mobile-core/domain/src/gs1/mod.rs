//! GS1 identifiers: parsing, validation and conversion of everything a pharma scanner reads
//! (element strings with or without symbology identifier, bracketed strings, Digital Link
//! URIs, and, on request, GTINs and SSCCs keyed in by hand). No I/O: the AI table is
//! compiled in.
//!
//! Verdicts follow the GS1 General Specifications and, where they leave room, the GS1
//! Barcode Syntax Engine. Entry points: [`parse`] / [`parse_str`], then the accessors and
//! conversions of [`Gs1Data`].
//!
//! ```
//! use swt_domain::gs1::{parse_str, ParseOptions};
//! let d = parse_str("]d201003123456789061726123110A1B2C3\u{1d}21100000000001",
//!                   &ParseOptions::default()).unwrap();
//! let pi = d.product_identifier().unwrap();
//! assert_eq!(pi.gtin.as_str(), "00312345678906");
//! assert_eq!(pi.serial.as_deref(), Some("100000000001"));
//! assert_eq!(d.to_bracketed(), "(01)00312345678906(17)261231(10)A1B2C3(21)100000000001");
//! ```

mod ai_table;
mod assoc;
mod bracketed;
mod check_digit;
mod codes;
mod data;
mod date;
mod digital_link;
mod element;
mod epc;
mod error;
mod keys;
mod lint;
mod table;
mod warn;

pub use ai_table::DICTIONARY_RELEASE;
pub use check_digit::{check_character_pair, mod10_check_digit, mod10_is_valid};
pub use data::{AiValue, Expiry, Gs1Data, InputForm, ProductIdentifier, SymbologyId};
pub use date::{Date, current_year, days_in_month, is_leap_year, resolve_century};
pub use epc::parse_epc_urn;
pub use error::{ErrorKind, Gs1Error, Warning, WarningKind};

use error::Detail;
pub use keys::{Gln, Gtin, Sscc};

use data::Builder;
use element::{ElemList, GS};

/// Options of [`parse`]. `ParseOptions::default()` gives the verdicts of the GS1 General
/// Specifications / GS1 engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// A byte that the scanner sends in place of the GS (0x1D) separator, e.g. `Some(b'~')`
    /// for Android keyboard-wedge setups. Off by default. Pick a byte outside GS1 character
    /// set 82 (such as `~`, `|`, `^`, `#`), so it can never be part of a value.
    pub separator_substitute: Option<u8>,
    /// Accept one GS (or substitute) at the very start, as some scanners send FNC1 in first
    /// position. Off by default: the GS1 engine rejects it.
    pub allow_leading_fnc1: bool,
    /// Read a bare GTIN-8/12/13/14 or 18-digit SSCC (all digits, exactly that long, valid
    /// check digit) as a key keyed in by hand, before trying it as AI data. Off by
    /// default: the GS1 engine reads such digits as an element string (`17261231101234`
    /// is an expiry and a lot, and could also pass as a GTIN), so guessing would change
    /// verdicts. For an entry field where a person types a key, call [`parse_keyed`].
    pub keyed_in_keys: bool,
    /// Check requisite AIs (e.g. (21) needs (01)). On by default, as in the GS1 engine.
    pub check_requisites: bool,
    /// Run the warning heuristics (lost separators, expiry day 00). On by default.
    pub warnings: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            separator_substitute: None,
            allow_leading_fnc1: false,
            keyed_in_keys: false,
            check_requisites: true,
            warnings: true,
        }
    }
}

/// Parses and fully validates one scanned or typed code, detecting its form.
///
/// Never panics, whatever the bytes. See [`InputForm`] for the forms recognised. Data that
/// is not GS1 at all (`]d1`/`]Q1`/`]J0` plain data, a URI with a mixed-case scheme) fails
/// with [`ErrorKind::NotGs1`], so a caller can say "not a GS1 barcode".
pub fn parse(input: &[u8], opts: &ParseOptions) -> Result<Gs1Data, Gs1Error> {
    // One builder, filled in place by the form readers and moved once into the result:
    // the values and elements sit inline (a few hundred bytes), so moving them from
    // function to function costs more than the association checks of a typical code.
    let mut b = Builder::empty();
    let read = read_into(input, opts, &mut b)?;
    b.finish(read.form, read.symbology, opts, read.element_form)?;
    Ok(b)
}

/// What a form reader found, for [`Builder::finish`].
struct Read {
    form: InputForm,
    symbology: Option<SymbologyId>,
    /// An element string (the one form that can lose a separator unnoticed).
    element_form: bool,
}

impl Read {
    fn of(form: InputForm, symbology: Option<SymbologyId>) -> Read {
        Read {
            form,
            symbology,
            element_form: form == InputForm::ElementString,
        }
    }
}

/// Detects the form of `input` and reads it into `b`, with every per-value check.
fn read_into(input: &[u8], opts: &ParseOptions, b: &mut Builder) -> Result<Read, Gs1Error> {
    if let Some(rest) = input.strip_prefix(b"]") {
        return read_scanned(input, rest, opts, b);
    }
    if input.first() == Some(&b'(') {
        bracketed::parse_bracketed(input, &mut b.buf, &mut b.elems)?;
        b.validate_values()?;
        return Ok(Read::of(InputForm::Bracketed, None));
    }
    if digital_link::dl_scheme_len(input).is_some() {
        digital_link::parse_digital_link(input, 0, &mut b.buf, &mut b.elems)?;
        b.validate_values()?;
        return Ok(Read::of(InputForm::DigitalLink, None));
    }
    if digital_link::looks_like_http_uri(input) {
        // A mixed-case scheme is not a DL URI for the GS1 engine, which reads it as plain
        // data: not GS1.
        return Err(not_gs1_uri());
    }
    if opts.keyed_in_keys && b.keyed_in(input) {
        return Ok(Read::of(InputForm::PlainKey, None));
    }
    if let [c0, c1, ..] = input
        && c0.is_ascii_alphabetic()
        && c1.is_ascii_digit()
    {
        return Err(Gs1Error::plain(
            ErrorKind::MissingSymbologyId,
            Some(0),
            "looks like scanner data whose symbology identifier lost its ']' (e.g. ']d2')",
        ));
    }
    element_string(input, 0, opts, b, None).map_err(|e| {
        if looks_bracketed_without_open(input) {
            // Say what is really wrong rather than complain about the first character.
            Gs1Error::plain(
                ErrorKind::BracketSyntax,
                Some(0),
                "looks like a bracketed code without its opening '('",
            )
        } else {
            e
        }
    })
}

/// The error for a URI whose scheme is `http(s)://` in mixed case.
fn not_gs1_uri() -> Gs1Error {
    Gs1Error::plain(
        ErrorKind::NotGs1,
        Some(0),
        "not a GS1 barcode: a URI whose scheme is in mixed case is not a GS1 Digital Link URI",
    )
}

/// Parses a GS1 key keyed in by hand: a GTIN-8, -12, -13 or -14 (held as (01), padded to
/// 14 digits) or an 18-digit SSCC (held as (00)), digits only, with its check digit.
///
/// The explicit form of keyed-in entry, for a field where a person types a key: unlike
/// [`parse`], nothing is guessed, and what is not such a key fails with the reason
/// (`bad_charset_numeric`, `too_short`/`too_long`, `bad_check_digit`).
///
/// ```
/// use swt_domain::gs1::{parse_keyed, InputForm};
/// let d = parse_keyed(b"9506000134352").unwrap();
/// assert_eq!((d.get("01"), d.form()), (Some("09506000134352"), InputForm::PlainKey));
/// assert_eq!(parse_keyed(b"106141411234567897").unwrap().get("00"), Some("106141411234567897"));
/// assert_eq!(parse_keyed(b"9506000134353").unwrap_err().code(), "bad_check_digit");
/// ```
pub fn parse_keyed(input: &[u8]) -> Result<Gs1Data, Gs1Error> {
    let mut b = Builder::empty();
    b.keyed_key(input)?;
    b.finish(InputForm::PlainKey, None, &ParseOptions::default(), false)?;
    Ok(b)
}

/// [`parse`] for text input.
pub fn parse_str(input: &str, opts: &ParseOptions) -> Result<Gs1Data, Gs1Error> {
    parse(input.as_bytes(), opts)
}

/// `01)...`: a bracketed string that lost its first `(`. Only used to word the error when
/// the input is not a valid element string either (`10)A` is a valid lot `)A`).
fn looks_bracketed_without_open(input: &[u8]) -> bool {
    let digits = input.iter().take_while(|c| c.is_ascii_digit()).count();
    (2..=4).contains(&digits) && input.get(digits) == Some(&b')')
}

fn element_string(
    input: &[u8],
    base: usize,
    opts: &ParseOptions,
    b: &mut Builder,
    sym: Option<SymbologyId>,
) -> Result<Read, Gs1Error> {
    let full = input.get(base..).unwrap_or_default();
    let sub = opts.separator_substitute;
    let (data, data_base) = match full.first() {
        Some(&c) if opts.allow_leading_fnc1 && (c == GS || Some(c) == sub) => {
            (full.get(1..).unwrap_or_default(), base + 1)
        }
        _ => (full, base),
    };
    if let Err(e) = element::parse_element_string(data, sub, data_base, &mut b.elems) {
        // A '^' is in no character set and is no AI digit, so data holding one always fails
        // to split; looking for it only then keeps the valid path to one pass, and the
        // caret error still takes precedence over whatever the splitter found.
        if sub != Some(b'^')
            && let Some(i) = full.iter().position(|&c| c == b'^')
        {
            return Err(Gs1Error::plain(
                ErrorKind::CaretInData,
                Some(base + i),
                "the code contains '^', which is never valid in GS1 data (scanner FNC1 setting?)",
            ));
        }
        return Err(e);
    }
    // Copy the data, normalising substitutes to GS so the buffer is pure ASCII: inline
    // for typical codes, so no allocation.
    match sub {
        None => b.buf.extend_from_slice(data),
        Some(s) => b.buf.extend_replacing(data, s),
    }
    // Element ranges are relative to `data`: exactly what the buffer now holds.
    Ok(Read::of(InputForm::ElementString, sym))
}

fn read_scanned(
    input: &[u8],
    rest: &[u8],
    opts: &ParseOptions,
    b: &mut Builder,
) -> Result<Read, Gs1Error> {
    let (Some(&sym_c), Some(&sym_m)) = (rest.first(), rest.get(1)) else {
        return Err(Gs1Error::plain(
            ErrorKind::MissingSymbologyId,
            Some(0),
            "the symbology identifier is incomplete (']' needs a letter and a digit)",
        ));
    };
    let sym = SymbologyId([sym_c, sym_m]);
    let data = rest.get(2..).unwrap_or_default();
    match &sym.0 {
        b"d2" | b"C1" | b"Q3" | b"e0" | b"J1" => element_string(input, 3, opts, b, Some(sym)),
        b"d1" | b"Q1" | b"J0" => {
            if digital_link::dl_scheme_len(data).is_some() {
                digital_link::parse_digital_link(data, 3, &mut b.buf, &mut b.elems)?;
                b.validate_values()?;
                Ok(Read::of(InputForm::DigitalLink, Some(sym)))
            } else {
                // The engine accepts these as plain data with no AIs: not GS1.
                Err(Gs1Error::detail(
                    ErrorKind::NotGs1,
                    Some(0),
                    Detail::NotGs1Sym(sym.0),
                ))
            }
        }
        b"E0" | b"E4" => {
            let want = if &sym.0 == b"E0" { 13 } else { 8 };
            let (primary, composite) = match data.windows(4).position(|w| w == b"|]e0") {
                Some(i) => (data.get(..i).unwrap_or_default(), data.get(i + 4..)),
                None => (data, None),
            };
            b.primary(primary, want)?;
            if let Some(cc) = composite {
                let off = 3 + primary.len() + 4;
                let mut more = ElemList::default();
                element::parse_element_string(cc, opts.separator_substitute, off, &mut more)?;
                b.append_elements(cc, more.as_slice());
            }
            Ok(Read::of(InputForm::PlainKey, Some(sym)))
        }
        _ => Err(Gs1Error::detail(
            ErrorKind::UnsupportedSymbologyId,
            Some(0),
            Detail::UnsupportedSym(sym.0),
        )),
    }
}
