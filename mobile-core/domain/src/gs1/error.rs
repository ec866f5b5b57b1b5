//! Typed errors and warnings of the GS1 engine, each with a stable machine code.
//!
//! Codes are part of the public contract (scan rules, the CLI's JSON and support tooling
//! key on them): never rename one; add new kinds instead.

/// What went wrong. Every kind has a stable snake_case [`code`](ErrorKind::code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No data at all (`The AI data is empty`).
    EmptyData,
    /// An AI with an empty value.
    EmptyValue,
    /// A value shorter than its AI allows.
    TooShort,
    /// A value longer than its AI allows (in an element string: usually a lost separator).
    TooLong,
    /// Not an AI of the GS1 General Specifications.
    UnknownAi,
    /// Malformed bracketed syntax.
    BracketSyntax,
    /// Wrong mod-10 check digit.
    BadCheckDigit,
    /// Wrong check character pair (GMN, AI 8013/8014).
    BadCheckCharacters,
    /// A non-digit where a digit is expected.
    BadCharsetNumeric,
    /// A character outside GS1 AI encodable character set 82.
    BadCharsetCset82,
    /// A character outside character set 39.
    BadCharsetCset39,
    /// A character outside character set 64.
    BadCharsetCset64,
    /// Wrong `=` padding in a character set 64 value.
    BadCset64Padding,
    /// Month outside 01–12.
    InvalidDateMonth,
    /// Day that does not exist in the month.
    InvalidDateDay,
    /// Hour, minute or second out of range.
    InvalidTime,
    /// Piece number / total of an ITIP is impossible.
    PieceOfTotal,
    /// A leading zero where none is allowed.
    ZeroPrefix,
    /// The GS1 Company Prefix part does not start with 4 digits.
    BadGcpPrefix,
    /// The component is too short to hold a GS1 Company Prefix.
    GcpTooShort,
    /// A value that must be `0` or `1`.
    YesNo,
    /// A value from a code list (country, currency, ...) that is not in the list.
    InvalidCode,
    /// A value outside its allowed range or shape (coordinates, `%` escapes, ...).
    InvalidValue,
    /// Two AIs that must not appear together.
    MutuallyExclusive,
    /// An AI whose required companion AIs are missing.
    MissingRequisite,
    /// The same AI twice with different values.
    RepeatedAiDifferentValues,
    /// (253)/(255)/(8003) without their serial part next to a digital signature (8030).
    DigsigSerial,
    /// Scan data without a `]xx` symbology identifier.
    MissingSymbologyId,
    /// A symbology identifier this engine does not handle (or not a GS1 one).
    UnsupportedSymbologyId,
    /// A `^` in AI data (reserved for FNC1).
    CaretInData,
    /// A Digital Link URI with characters not allowed in a URI.
    DlIllegalChar,
    /// A Digital Link URI whose domain has illegal characters.
    DlBadDomain,
    /// A Digital Link URI without a domain or path.
    DlNoDomainOrPath,
    /// No GS1 primary key in the Digital Link path.
    DlNoKey,
    /// The path AIs are not a valid key-qualifier sequence.
    DlBadKeyQualifierSeq,
    /// An AI appears twice in a Digital Link URI.
    DlDuplicateAi,
    /// A query AI that is not allowed as a Digital Link data attribute.
    DlNotDataAttribute,
    /// A query AI that belongs in the path as a key qualifier.
    DlQualifierInQuery,
    /// An empty value in a Digital Link path or query.
    DlEmptyValue,
    /// A numeric query key that is not an AI.
    DlUnknownAi,
    /// A `%00` in a Digital Link value.
    DlNull,
    /// A conversion that the data cannot support (e.g. no key to put in a Digital Link).
    Conversion,
    /// Not GS1 data at all: a read that the GS1 engine accepts as plain data carrying no
    /// AIs, such as a DataMatrix without FNC1 in first position (`]d1`), a plain QR Code
    /// (`]Q1`) or DotCode (`]J0`) that holds no Digital Link URI, or a URI whose scheme is
    /// in mixed case (`HtTpS://`, not a Digital Link URI). The scanner says "not a GS1
    /// barcode" rather than "unreadable".
    NotGs1,
}

impl ErrorKind {
    /// The stable machine code, e.g. `"bad_check_digit"`.
    pub fn code(self) -> &'static str {
        use ErrorKind::*;
        match self {
            EmptyData => "empty_data",
            EmptyValue => "empty_value",
            TooShort => "too_short",
            TooLong => "too_long",
            UnknownAi => "unknown_ai",
            BracketSyntax => "bracket_syntax",
            BadCheckDigit => "bad_check_digit",
            BadCheckCharacters => "bad_check_characters",
            BadCharsetNumeric => "bad_charset_numeric",
            BadCharsetCset82 => "bad_charset_cset82",
            BadCharsetCset39 => "bad_charset_cset39",
            BadCharsetCset64 => "bad_charset_cset64",
            BadCset64Padding => "bad_cset64_padding",
            InvalidDateMonth => "invalid_date_month",
            InvalidDateDay => "invalid_date_day",
            InvalidTime => "invalid_time",
            PieceOfTotal => "piece_of_total",
            ZeroPrefix => "zero_prefix",
            BadGcpPrefix => "bad_gcp_prefix",
            GcpTooShort => "gcp_too_short",
            YesNo => "yes_no",
            InvalidCode => "invalid_code",
            InvalidValue => "invalid_value",
            MutuallyExclusive => "mutually_exclusive",
            MissingRequisite => "missing_requisite",
            RepeatedAiDifferentValues => "repeated_ai_different_values",
            DigsigSerial => "digsig_serial",
            MissingSymbologyId => "missing_symbology_id",
            UnsupportedSymbologyId => "unsupported_symbology_id",
            CaretInData => "caret_in_data",
            DlIllegalChar => "dl_illegal_char",
            DlBadDomain => "dl_bad_domain",
            DlNoDomainOrPath => "dl_no_domain_or_path",
            DlNoKey => "dl_no_key",
            DlBadKeyQualifierSeq => "dl_bad_key_qualifier_seq",
            DlDuplicateAi => "dl_duplicate_ai",
            DlNotDataAttribute => "dl_not_data_attribute",
            DlQualifierInQuery => "dl_qualifier_in_query",
            DlEmptyValue => "dl_empty_value",
            DlUnknownAi => "dl_unknown_ai",
            DlNull => "dl_null",
            Conversion => "conversion",
            NotGs1 => "not_gs1",
        }
    }

    /// Every kind, for documentation and exhaustive tests.
    pub const ALL: &'static [ErrorKind] = {
        use ErrorKind::*;
        &[
            EmptyData,
            EmptyValue,
            TooShort,
            TooLong,
            UnknownAi,
            BracketSyntax,
            BadCheckDigit,
            BadCheckCharacters,
            BadCharsetNumeric,
            BadCharsetCset82,
            BadCharsetCset39,
            BadCharsetCset64,
            BadCset64Padding,
            InvalidDateMonth,
            InvalidDateDay,
            InvalidTime,
            PieceOfTotal,
            ZeroPrefix,
            BadGcpPrefix,
            GcpTooShort,
            YesNo,
            InvalidCode,
            InvalidValue,
            MutuallyExclusive,
            MissingRequisite,
            RepeatedAiDifferentValues,
            DigsigSerial,
            MissingSymbologyId,
            UnsupportedSymbologyId,
            CaretInData,
            DlIllegalChar,
            DlBadDomain,
            DlNoDomainOrPath,
            DlNoKey,
            DlBadKeyQualifierSeq,
            DlDuplicateAi,
            DlNotDataAttribute,
            DlQualifierInQuery,
            DlEmptyValue,
            DlUnknownAi,
            DlNull,
            Conversion,
            NotGs1,
        ]
    };
}

/// A GS1 parse, validation or conversion failure.
///
/// `Display` is a one-line message for a support person, e.g.
/// `AI (17): day 31 does not exist in April`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Gs1Error {
    kind: ErrorKind,
    ai: Option<String>,
    position: Option<usize>,
    message: String,
}

impl Gs1Error {
    pub(crate) fn new(
        kind: ErrorKind,
        ai: Option<&str>,
        position: Option<usize>,
        message: String,
    ) -> Self {
        Gs1Error {
            kind,
            ai: ai.map(str::to_owned),
            position,
            message,
        }
    }

    /// An error about AI `ai`; the message gets the `AI (xx): ` prefix.
    pub(crate) fn at(kind: ErrorKind, ai: &str, position: Option<usize>, what: &str) -> Self {
        Gs1Error {
            kind,
            ai: Some(ai.to_owned()),
            position,
            message: format!("AI ({ai}): {what}"),
        }
    }

    /// An error not tied to one AI.
    pub(crate) fn plain(kind: ErrorKind, position: Option<usize>, what: &str) -> Self {
        Gs1Error {
            kind,
            ai: None,
            position,
            message: what.to_owned(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine code, e.g. `"invalid_date_day"`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The AI concerned, if the failure is about one.
    pub fn ai(&self) -> Option<&str> {
        self.ai.as_deref()
    }

    /// Byte offset in the input where the problem was found, when it is known
    /// (element strings and bracketed strings; Digital Link values are decoded first).
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    /// The one-line message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a warning is about. Warnings never change the verdict of the GS1 standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// A variable-length value contains what parses as further AIs that are absent
    /// elsewhere: probably a lost FNC1/GS separator merged them into this value.
    SuspectMissingSeparator,
    /// An expiry or best-before date uses day `00` (valid, but healthcare guidance
    /// (GSCN 21-040) asks for a real day).
    ExpiryDayZero,
}

impl WarningKind {
    /// The stable machine code, e.g. `"suspect_missing_separator"`.
    pub fn code(self) -> &'static str {
        match self {
            WarningKind::SuspectMissingSeparator => "suspect_missing_separator",
            WarningKind::ExpiryDayZero => "expiry_day_zero",
        }
    }
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
