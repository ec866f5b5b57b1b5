//! Typed errors and warnings of the GS1 engine, each with a stable machine code.
//!
//! Codes are part of the public contract (scan rules, the CLI's JSON and support tooling
//! key on them): never rename one; add new kinds instead.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use super::lint::{ShowByte, Why};

crate::code_table! {
    /// What went wrong. Every kind has a stable snake_case [`code`](ErrorKind::code);
    /// [`ALL`](ErrorKind::ALL) lists them for documentation and exhaustive tests.
    #[non_exhaustive]
    pub enum ErrorKind {
        /// No data at all (`The AI data is empty`).
        EmptyData = "empty_data",
        /// An AI with an empty value.
        EmptyValue = "empty_value",
        /// A value shorter than its AI allows.
        TooShort = "too_short",
        /// A value longer than its AI allows (in an element string: usually a lost separator).
        TooLong = "too_long",
        /// Not an AI of the GS1 General Specifications.
        UnknownAi = "unknown_ai",
        /// Malformed bracketed syntax.
        BracketSyntax = "bracket_syntax",
        /// Wrong mod-10 check digit.
        BadCheckDigit = "bad_check_digit",
        /// Wrong check character pair (GMN, AI 8013/8014).
        BadCheckCharacters = "bad_check_characters",
        /// A non-digit where a digit is expected.
        BadCharsetNumeric = "bad_charset_numeric",
        /// A character outside GS1 AI encodable character set 82.
        BadCharsetCset82 = "bad_charset_cset82",
        /// A character outside character set 39.
        BadCharsetCset39 = "bad_charset_cset39",
        /// A character outside character set 64.
        BadCharsetCset64 = "bad_charset_cset64",
        /// Wrong `=` padding in a character set 64 value.
        BadCset64Padding = "bad_cset64_padding",
        /// Month outside 01–12.
        InvalidDateMonth = "invalid_date_month",
        /// Day that does not exist in the month.
        InvalidDateDay = "invalid_date_day",
        /// Hour, minute or second out of range.
        InvalidTime = "invalid_time",
        /// Piece number / total of an ITIP is impossible.
        PieceOfTotal = "piece_of_total",
        /// A leading zero where none is allowed.
        ZeroPrefix = "zero_prefix",
        /// The GS1 Company Prefix part does not start with 4 digits.
        BadGcpPrefix = "bad_gcp_prefix",
        /// The component is too short to hold a GS1 Company Prefix.
        GcpTooShort = "gcp_too_short",
        /// A value that must be `0` or `1`.
        YesNo = "yes_no",
        /// A value from a code list (country, currency, ...) that is not in the list.
        InvalidCode = "invalid_code",
        /// A value outside its allowed range or shape (coordinates, `%` escapes, ...).
        InvalidValue = "invalid_value",
        /// Two AIs that must not appear together.
        MutuallyExclusive = "mutually_exclusive",
        /// An AI whose required companion AIs are missing.
        MissingRequisite = "missing_requisite",
        /// The same AI twice with different values.
        RepeatedAiDifferentValues = "repeated_ai_different_values",
        /// (253)/(255)/(8003) without their serial part next to a digital signature (8030).
        DigsigSerial = "digsig_serial",
        /// Scan data without a `]xx` symbology identifier.
        MissingSymbologyId = "missing_symbology_id",
        /// A symbology identifier this engine does not handle (or not a GS1 one).
        UnsupportedSymbologyId = "unsupported_symbology_id",
        /// A `^` in AI data (reserved for FNC1).
        CaretInData = "caret_in_data",
        /// A Digital Link URI with characters not allowed in a URI.
        DlIllegalChar = "dl_illegal_char",
        /// A Digital Link URI whose domain has illegal characters.
        DlBadDomain = "dl_bad_domain",
        /// A Digital Link URI without a domain or path.
        DlNoDomainOrPath = "dl_no_domain_or_path",
        /// No GS1 primary key in the Digital Link path.
        DlNoKey = "dl_no_key",
        /// The path AIs are not a valid key-qualifier sequence.
        DlBadKeyQualifierSeq = "dl_bad_key_qualifier_seq",
        /// An AI appears twice in a Digital Link URI.
        DlDuplicateAi = "dl_duplicate_ai",
        /// A query AI that is not allowed as a Digital Link data attribute.
        DlNotDataAttribute = "dl_not_data_attribute",
        /// A query AI that belongs in the path as a key qualifier.
        DlQualifierInQuery = "dl_qualifier_in_query",
        /// An empty value in a Digital Link path or query.
        DlEmptyValue = "dl_empty_value",
        /// A numeric query key that is not an AI.
        DlUnknownAi = "dl_unknown_ai",
        /// A `%00` in a Digital Link value.
        DlNull = "dl_null",
        /// A conversion that the data cannot support (e.g. no key to put in a Digital Link).
        Conversion = "conversion",
        /// Not GS1 data at all: a read that the GS1 engine accepts as plain data carrying no
        /// AIs, such as a DataMatrix without FNC1 in first position (`]d1`), a plain QR Code
        /// (`]Q1`) or DotCode (`]J0`) that holds no Digital Link URI, or a URI whose scheme is
        /// in mixed case (`HtTpS://`, not a Digital Link URI). The scanner says "not a GS1
        /// barcode" rather than "unreadable".
        NotGs1 = "not_gs1",
    }
    /// The stable machine code, e.g. `"bad_check_digit"`.
    fn code;
}

/// A GS1 parse, validation or conversion failure.
///
/// `Display` (and [`message`](Gs1Error::message)) is a one-line message for a support
/// person, e.g. `AI (17): day 31 does not exist in April`. The error itself only holds
/// facts (kind, AI, position, what was found); the words are put together when the
/// message is asked for, so a failed parse allocates nothing: scanners that read a
/// damaged label many times a second, and callers that only look at [`code`](Self::code),
/// never pay for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Error {
    kind: ErrorKind,
    /// Whether the message starts `AI (xx): `.
    prefixed: bool,
    ai: Option<&'static str>,
    position: Option<usize>,
    detail: Detail,
    snip: Snip,
}

/// The facts behind a message; [`Gs1Error`]'s `Display` turns them into words. Bytes of
/// the input that a message quotes are in the error's [`Snip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Fixed words.
    Text(&'static str),
    /// A failed component check; `NotInList` quotes the snip.
    Why(Why),
    /// A value shorter than its AI allows (`element`: worded for element strings).
    TooShort {
        len: u32,
        min: u16,
        max: u16,
        element: bool,
    },
    /// A value longer than its AI allows.
    TooLong {
        len: u32,
        min: u16,
        max: u16,
        element: bool,
    },
    /// No AI starts at the snip (up to 4 bytes of the element string).
    UnknownAiAt,
    /// The snip is not an AI; `bracketed` words it as `(ai)`.
    NotAnAi { bracketed: bool },
    /// A symbology identifier that is not a GS1 one.
    UnsupportedSym([u8; 2]),
    /// A symbology identifier of plain (non-GS1) data.
    NotGs1Sym([u8; 2]),
    /// EAN/UPC primary data of the wrong length.
    EanLength { want: u8, got: u32 },
    /// A byte that a URI cannot hold.
    IllegalUriChar(u8),
    /// A numeric query key (the snip) that is not an AI.
    DlUnknownAi,
    /// The path AIs after this key are not a qualifier sequence of it.
    BadQualifierSeq(&'static str),
    /// A query AI that belongs in the path after this key.
    QualifierInQuery(&'static str),
    /// The error's AI and this one must not appear together.
    MutuallyExclusive(&'static str),
    /// The requisite, as the Syntax Dictionary writes it (`01,02+37`).
    MissingRequisite(&'static str),
    /// The two values of a repeated AI (the snip's two parts).
    RepeatedValues,
    /// A bracketed AI with nothing after it.
    NoValueAfter(&'static str),
    /// Typed digits of a length no key has.
    KeyedLength(u32),
    /// A key (`what`: GTIN, SSCC, GLN) with a non-digit.
    KeyDigitsOnly(&'static str),
    /// A key of the wrong length.
    KeyLength {
        what: &'static str,
        want: u8,
        got: u32,
    },
    /// A key whose check digit should be `want`.
    KeyCheck { what: &'static str, want: u8 },
    /// A GTIN of a length no GTIN has.
    GtinLength(u32),
    /// A GS1 Company Prefix length outside 6–12 in an EPC URN.
    GcpLength(u32),
    /// An AI that an EPC URN needs and the data lacks.
    NeedsAi(&'static str),
    /// An AI that a Digital Link URI with this key cannot carry.
    NotInDl { ai: &'static str, key: &'static str },
}

/// Up to [`SNIP`] bytes of the input that a message quotes (an unknown AI, a value), held
/// inline so that an error owns them without allocating; as two parts for the two values
/// of a repeated AI. Longer parts are cut, and the message marks the cut with `…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snip {
    buf: [u8; SNIP],
    /// Length of the first part, and of the second (after it in `buf`).
    a: u8,
    b: u8,
    /// Whether the first / second part was cut.
    cut: [bool; 2],
}

const SNIP: usize = 40;

impl Snip {
    const EMPTY: Snip = Snip {
        buf: [0; SNIP],
        a: 0,
        b: 0,
        cut: [false; 2],
    };

    fn put(&mut self, at: usize, room: usize, part: &[u8]) -> (u8, bool) {
        let n = part.len().min(room);
        if let (Some(dst), Some(src)) = (self.buf.get_mut(at..at + n), part.get(..n)) {
            dst.copy_from_slice(src);
        }
        (n as u8, n < part.len())
    }

    fn one(part: &[u8]) -> Snip {
        let mut s = Snip::EMPTY;
        (s.a, s.cut[0]) = s.put(0, SNIP, part);
        s
    }

    fn two(first: &[u8], second: &[u8]) -> Snip {
        let mut s = Snip::EMPTY;
        (s.a, s.cut[0]) = s.put(0, SNIP / 2, first);
        (s.b, s.cut[1]) = s.put(usize::from(s.a), SNIP / 2, second);
        s
    }

    fn first(&self) -> &[u8] {
        self.buf.get(..usize::from(self.a)).unwrap_or_default()
    }

    fn second(&self) -> &[u8] {
        let a = usize::from(self.a);
        self.buf.get(a..a + usize::from(self.b)).unwrap_or_default()
    }
}

/// Writes `part` as text (invalid UTF-8 shown as U+FFFD), then `…` if it was cut.
fn write_part(f: &mut fmt::Formatter<'_>, part: &[u8], cut: bool) -> fmt::Result {
    for chunk in part.utf8_chunks() {
        f.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            f.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    if cut {
        f.write_char('…')?;
    }
    Ok(())
}

/// "exactly N characters" or "N to M characters".
struct LengthWords(u16, u16);

impl fmt::Display for LengthWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "exactly {} characters", self.0)
        } else {
            write!(f, "{} to {} characters", self.0, self.1)
        }
    }
}

impl Gs1Error {
    fn build(
        kind: ErrorKind,
        ai: Option<&'static str>,
        prefixed: bool,
        position: Option<usize>,
        detail: Detail,
    ) -> Self {
        Gs1Error {
            kind,
            prefixed,
            ai,
            position,
            detail,
            snip: Snip::EMPTY,
        }
    }

    /// An error about AI `ai`; the message gets the `AI (xx): ` prefix.
    pub(crate) fn at(
        kind: ErrorKind,
        ai: &'static str,
        position: Option<usize>,
        text: &'static str,
    ) -> Self {
        Self::build(kind, Some(ai), true, position, Detail::Text(text))
    }

    /// [`at`](Self::at) with words made from facts.
    pub(crate) fn at_detail(
        kind: ErrorKind,
        ai: &'static str,
        position: Option<usize>,
        detail: Detail,
    ) -> Self {
        Self::build(kind, Some(ai), true, position, detail)
    }

    /// An error not tied to one AI.
    pub(crate) fn plain(kind: ErrorKind, position: Option<usize>, text: &'static str) -> Self {
        Self::build(kind, None, false, position, Detail::Text(text))
    }

    /// [`plain`](Self::plain) with words made from facts.
    pub(crate) fn detail(kind: ErrorKind, position: Option<usize>, detail: Detail) -> Self {
        Self::build(kind, None, false, position, detail)
    }

    /// Names the AI concerned without prefixing the message with it (the words name it).
    pub(crate) fn about(mut self, ai: &'static str) -> Self {
        self.ai = Some(ai);
        self
    }

    /// Keeps `part` of the input for the message to quote.
    pub(crate) fn quoting(mut self, part: &[u8]) -> Self {
        self.snip = Snip::one(part);
        self
    }

    /// Keeps two parts of the input for the message to quote.
    pub(crate) fn quoting_two(mut self, first: &[u8], second: &[u8]) -> Self {
        self.snip = Snip::two(first, second);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine code, e.g. `"invalid_date_day"`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The AI concerned, if the failure is about one (for an unknown AI in a Digital Link
    /// query, the query key as written, cut to its first 40 bytes).
    pub fn ai(&self) -> Option<&str> {
        match (self.ai, self.detail) {
            (Some(ai), _) => Some(ai),
            (None, Detail::DlUnknownAi) => std::str::from_utf8(self.snip.first()).ok(),
            (None, _) => None,
        }
    }

    /// Byte offset in the input where the problem was found, when it is known
    /// (element strings and bracketed strings; Digital Link values are decoded first).
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// The one-line message (same as `Display`). Put together on each call: borrowed
    /// when it is fixed text, formatted otherwise.
    pub fn message(&self) -> Cow<'static, str> {
        match self.detail {
            Detail::Text(t) if !self.prefixed => Cow::Borrowed(t),
            _ => Cow::Owned(self.to_string()),
        }
    }

    /// The words after any `AI (xx): ` prefix.
    fn body(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ai = self.ai.unwrap_or("");
        let (first, second) = (self.snip.first(), self.snip.second());
        let [cut1, cut2] = self.snip.cut;
        match self.detail {
            Detail::Text(t) => f.write_str(t),
            Detail::Why(why) => why.write(f, first),
            Detail::TooShort {
                len,
                min,
                max,
                element,
            } => {
                write!(
                    f,
                    "{len} characters is too short, needs {}",
                    LengthWords(min, max)
                )?;
                if element {
                    f.write_str(" (data cut off, or a separator inside it?)")?;
                }
                Ok(())
            }
            Detail::TooLong {
                len,
                min,
                max,
                element,
            } => {
                if element {
                    write!(
                        f,
                        "value is longer than {max} characters (a missing separator after it?)"
                    )
                } else {
                    write!(
                        f,
                        "{len} characters is too long, allows {}",
                        LengthWords(min, max)
                    )
                }
            }
            Detail::UnknownAiAt => {
                let gs_first = first.first() == Some(&0x1d);
                f.write_str(if gs_first {
                    "no AI where one should start (\""
                } else {
                    "unknown AI at \""
                })?;
                for &c in first {
                    if c.is_ascii_graphic() {
                        f.write_char(char::from(c))?;
                    } else {
                        write!(f, "{}", ShowByte(c))?;
                    }
                }
                f.write_str(if gs_first {
                    "...\"): two separators in a row, or a separator at the start"
                } else {
                    "...\": no GS1 Application Identifier starts like this"
                })
            }
            Detail::NotAnAi { bracketed } => {
                f.write_str(if bracketed { "\"(" } else { "\"" })?;
                write_part(f, first, cut1)?;
                f.write_str(if bracketed { ")\"" } else { "\"" })?;
                f.write_str(" is not a GS1 Application Identifier")
            }
            Detail::UnsupportedSym([l, m]) => write!(
                f,
                "symbology identifier ]{}{} is not a GS1 symbology this reader supports",
                char::from(l),
                char::from(m)
            ),
            Detail::NotGs1Sym([l, m]) => write!(
                f,
                "not a GS1 barcode: ]{}{} marks plain data (no FNC1 in first position), \
                 and it holds no Digital Link URI",
                char::from(l),
                char::from(m)
            ),
            Detail::EanLength { want, got } => {
                write!(f, "EAN/UPC data must have {want} digits, not {got}")
            }
            Detail::IllegalUriChar(c) => write!(
                f,
                "the URI contains {}, which is not allowed in a URI",
                ShowByte(c)
            ),
            Detail::DlUnknownAi => {
                f.write_str("query parameter ")?;
                write_part(f, first, cut1)?;
                f.write_str(" is not a GS1 Application Identifier")
            }
            Detail::BadQualifierSeq(key) => write!(
                f,
                "the AIs in the URI path are not a valid order of qualifiers for key ({key})"
            ),
            Detail::QualifierInQuery(key) => write!(
                f,
                "belongs in the URI path after key ({key}), not in the query"
            ),
            Detail::MutuallyExclusive(other) => write!(
                f,
                "AI ({ai}) and AI ({other}) must not appear together on one item"
            ),
            Detail::MissingRequisite(text) => {
                f.write_str("needs AI ")?;
                for c in text.chars() {
                    match c {
                        ',' => f.write_str(" or ")?,
                        '+' => f.write_str(" with ")?,
                        c => f.write_char(c)?,
                    }
                }
                f.write_str(" on the same item, which is missing")
            }
            Detail::RepeatedValues => {
                f.write_str("appears twice with different values (\"")?;
                write_part(f, first, cut1)?;
                f.write_str("\" and \"")?;
                write_part(f, second, cut2)?;
                f.write_str("\")")
            }
            Detail::NoValueAfter(ai) => write!(f, "AI ({ai}) has no value after it"),
            Detail::KeyedLength(n) => write!(
                f,
                "a keyed-in GTIN has 8, 12, 13 or 14 digits and an SSCC 18, not {n}"
            ),
            Detail::KeyDigitsOnly(what) => write!(f, "a {what} has digits only"),
            Detail::KeyLength { what, want, got } => {
                write!(f, "a {what} has {want} digits, not {got}")
            }
            Detail::KeyCheck { what, want } => write!(
                f,
                "check digit of the {what} should be {} (mistyped or misread digit?)",
                char::from(want)
            ),
            Detail::GtinLength(n) => write!(f, "a GTIN has 8, 12, 13 or 14 digits, not {n}"),
            Detail::GcpLength(n) => write!(
                f,
                "a GS1 Company Prefix has 6 to 12 digits in an EPC URN, not {n}"
            ),
            Detail::NeedsAi(ai) => write!(f, "AI ({ai}) is needed for this EPC URN"),
            Detail::NotInDl { ai, key } => write!(
                f,
                "AI ({ai}) cannot be carried in a Digital Link URI with key ({key})"
            ),
        }
    }
}

impl fmt::Display for Gs1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefixed {
            write!(f, "AI ({}): ", self.ai.unwrap_or(""))?;
        }
        self.body(f)
    }
}

impl std::error::Error for Gs1Error {}

crate::code_table! {
    /// What a warning is about. Warnings never change the verdict of the GS1 standard.
    #[non_exhaustive]
    pub enum WarningKind {
        /// A variable-length value contains what parses as further AIs that are absent
        /// elsewhere: probably a lost FNC1/GS separator merged them into this value.
        SuspectMissingSeparator = "suspect_missing_separator",
        /// An expiry or best-before date uses day `00` (valid, but healthcare guidance
        /// (GSCN 21-040) asks for a real day).
        ExpiryDayZero = "expiry_day_zero",
    }
    /// The stable machine code, e.g. `"suspect_missing_separator"`.
    fn code;
}

/// A warning attached to a valid parse result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub(crate) kind: WarningKind,
    pub(crate) ai: &'static str,
    pub(crate) offset: usize,
    pub(crate) message: String,
}

impl Warning {
    /// The kind of warning.
    pub fn kind(&self) -> WarningKind {
        self.kind
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The AI whose value raised the warning.
    pub fn ai(&self) -> &'static str {
        self.ai
    }

    /// Offset within that AI's value where the suspicious part starts (0 when not relevant).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// A one-line explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
