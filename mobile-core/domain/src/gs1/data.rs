//! The parse result, `Gs1Data`: AIs in order over one owned buffer, typed accessors
//! (product identifier, SSCC, GLNs) and conversions to element string, bracketed form and
//! Digital Link URI. EPC URN conversions are in `epc`.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::ParseOptions;
use super::assoc;
use super::check_digit::mod10_is_valid;
use super::date::{Date, current_year};
use super::digital_link;
use super::element::{Bytes, Elem, ElemList, GS};
use super::error::{Detail, ErrorKind, Gs1Error, Warning};
use super::keys::{Gln, Gtin, Sscc};
use super::lint::{Mode, check_total_length, validate_value_known};
use super::table::{AiEntry, entry, lookup, predefined_len};
use super::warn;

/// The form an input was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputForm {
    /// AI element string (GS1 DataMatrix, GS1-128, GS1 QR, DataBar, DotCode), with or
    /// without a symbology identifier.
    ElementString,
    /// Bracketed AI syntax, `(01)...(10)...`.
    Bracketed,
    /// GS1 Digital Link URI.
    DigitalLink,
    /// A bare key: a GTIN or SSCC keyed in by hand ([`parse_keyed`](super::parse_keyed),
    /// or [`ParseOptions::keyed_in_keys`]), or EAN/UPC primary data (`]E0`, `]E4`).
    PlainKey,
    /// An EPC URN (`urn:epc:id:sgtin:...`), see [`parse_epc_urn`](super::parse_epc_urn).
    EpcUrn,
}

/// An AIM symbology identifier such as `]d2` (stored without the `]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbologyId(pub(crate) [u8; 2]);

impl SymbologyId {
    /// The symbology letter, e.g. `'d'` for DataMatrix.
    pub fn letter(&self) -> char {
        char::from(self.0[0])
    }

    /// The modifier character, e.g. `'2'`.
    pub fn modifier(&self) -> char {
        char::from(self.0[1])
    }
}

impl fmt::Display for SymbologyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "]{}{}", self.letter(), self.modifier())
    }
}

/// One AI and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiValue<'a> {
    /// The AI, e.g. `"17"`.
    pub ai: &'static str,
    /// The value exactly as encoded (never trimmed or case-folded).
    pub value: &'a str,
    /// The short title from the GS1 dictionary, e.g. `"USE BY or EXPIRY"`.
    pub title: &'static str,
}

/// An expiry date (AI 17) both as encoded and as a calendar date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    /// The value as encoded, `YYMMDD`; compare this, not the date, in LMS verification.
    pub yymmdd: String,
    /// The resolved date; day `00` becomes the last day of the month.
    pub date: Date,
}

/// The DSCSA / EU FMD product identifier of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductIdentifier {
    /// Product code (01).
    pub gtin: Gtin,
    /// Serial number (21).
    pub serial: Option<String>,
    /// Batch / lot (10).
    pub lot: Option<String>,
    /// Expiry (17).
    pub expiry: Option<Expiry>,
}

/// A parsed and fully validated code.
///
/// Holds one copy of the data, inline for typical codes; AI values are ranges into it, so
/// a typical parse makes no heap allocation. Warnings are worked out on first use.
#[derive(Debug, Clone)]
pub struct Gs1Data {
    form: InputForm,
    symbology: Option<SymbologyId>,
    pub(crate) buf: Bytes,
    pub(crate) elems: ElemList,
    /// Which warning heuristics apply, for [`warnings`](Gs1Data::warnings).
    warn: WarnScope,
    warnings: OnceLock<Vec<Warning>>,
}

/// Which warnings a [`Gs1Data`] gets: the heuristics cost more than the rest of a typical
/// parse, and most callers never look, so they run on the first call to `warnings()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WarnScope {
    /// [`ParseOptions::warnings`] was off.
    None,
    /// Every warning but the lost-separator one (which only an element string can have).
    Values,
    /// Every warning.
    ElementString,
}

/// Parse state shared by the form parsers: the result itself, filled in place and
/// finished by [`Builder::finish`]. Values and elements sit inline (a few hundred bytes),
/// so building the result anywhere else and moving it cost several copies per parse.
pub(crate) type Builder = Gs1Data;

impl Gs1Data {
    /// An empty result for the form readers to fill.
    pub(crate) fn empty() -> Gs1Data {
        Gs1Data {
            form: InputForm::ElementString,
            symbology: None,
            buf: Bytes::default(),
            elems: ElemList::default(),
            warn: WarnScope::None,
            warnings: OnceLock::new(),
        }
    }

    /// Component checks of every element (bracketed, DL and keyed forms; element strings
    /// are checked while they are split).
    pub(crate) fn validate_values(&self) -> Result<(), Gs1Error> {
        for el in self.elems.as_slice() {
            let v = self.buf.get(el.start as usize..el.end as usize);
            validate_value_known(entry(el.idx), v, el.pos as usize, Mode::Value, el.classes)?;
        }
        Ok(())
    }

    /// Association checks, then the result (warnings wait until asked for).
    pub(crate) fn finish(
        &mut self,
        form: InputForm,
        symbology: Option<SymbologyId>,
        opts: &ParseOptions,
        element_form: bool,
    ) -> Result<(), Gs1Error> {
        assoc::check(
            self.buf.as_slice(),
            self.elems.as_slice(),
            opts.check_requisites,
        )?;
        self.form = form;
        self.symbology = symbology;
        self.warn = match (opts.warnings, element_form) {
            (false, _) => WarnScope::None,
            (true, false) => WarnScope::Values,
            (true, true) => WarnScope::ElementString,
        };
        Ok(())
    }

    fn push_key(&mut self, ai: &str, digits: &[u8], pad_to: usize) {
        let Some((idx, _)) = lookup(ai.as_bytes()) else {
            return;
        };
        let start = self.buf.len();
        for _ in digits.len()..pad_to {
            self.buf.push(b'0');
        }
        self.buf.extend_from_slice(digits);
        self.elems.push(Elem {
            idx,
            start: start as u32,
            end: self.buf.len() as u32,
            pos: 0,
            classes: 0,
        });
    }

    /// A GTIN-8/12/13/14 or SSCC keyed in by hand: all digits, right length, valid check
    /// digit. Returns whether it was one (and then holds it as (01) or (00)).
    pub(crate) fn keyed_in(&mut self, input: &[u8]) -> bool {
        let ai = match input.len() {
            8 | 12 | 13 | 14 => "01",
            18 => "00",
            _ => return false,
        };
        if !mod10_is_valid(input) {
            return false;
        }
        self.push_key(ai, input, if ai == "01" { 14 } else { 18 });
        true
    }

    /// A key typed by hand ([`parse_keyed`](super::parse_keyed)): a GTIN-8/12/13/14 as
    /// (01) or an SSCC as (00), or the reason it is not one.
    pub(crate) fn keyed_key(&mut self, input: &[u8]) -> Result<(), Gs1Error> {
        if let Some(i) = input.iter().position(|c| !c.is_ascii_digit()) {
            return Err(Gs1Error::plain(
                ErrorKind::BadCharsetNumeric,
                Some(i),
                "a keyed-in GTIN or SSCC has digits only",
            ));
        }
        let (ai, pad) = match input.len() {
            8 | 12 | 13 | 14 => ("01", 14),
            18 => ("00", 18),
            n => {
                let kind = if n < 14 {
                    ErrorKind::TooShort
                } else {
                    ErrorKind::TooLong
                };
                return Err(Gs1Error::detail(kind, None, Detail::KeyedLength(n as u32)));
            }
        };
        if !mod10_is_valid(input) {
            return Err(Gs1Error::at(
                ErrorKind::BadCheckDigit,
                ai,
                Some(input.len() - 1),
                "the check digit is wrong (mistyped digit?)",
            ));
        }
        self.push_key(ai, input, pad);
        Ok(())
    }

    /// EAN/UPC primary data (`]E0` 13 digits, `]E4` 8 digits) as a GTIN.
    pub(crate) fn primary(&mut self, digits: &[u8], want: usize) -> Result<(), Gs1Error> {
        if let Some(i) = digits.iter().position(|c| !c.is_ascii_digit()) {
            return Err(Gs1Error::at(
                ErrorKind::BadCharsetNumeric,
                "01",
                Some(3 + i),
                "EAN/UPC data must be digits only",
            ));
        }
        if digits.len() != want {
            let kind = if digits.len() < want {
                ErrorKind::TooShort
            } else {
                ErrorKind::TooLong
            };
            return Err(Gs1Error::at_detail(
                kind,
                "01",
                Some(3),
                Detail::EanLength {
                    want: want as u8,
                    got: digits.len() as u32,
                },
            ));
        }
        if !mod10_is_valid(digits) {
            return Err(Gs1Error::at(
                ErrorKind::BadCheckDigit,
                "01",
                Some(3 + want - 1),
                "the check digit of the EAN/UPC code is wrong (misread?)",
            ));
        }
        self.push_key("01", digits, 14);
        Ok(())
    }

    /// Adds elements parsed from `data` (a composite component) to this builder.
    pub(crate) fn append_elements(&mut self, data: &[u8], elems: &[Elem]) {
        let off = self.buf.len() as u32;
        self.buf.extend_from_slice(data);
        for el in elems {
            self.elems.push(Elem {
                start: el.start + off,
                end: el.end + off,
                ..*el
            });
        }
    }

    /// Adds an (AI, value) pair, checking the AI and the value's length.
    pub(crate) fn push_pair(&mut self, ai: &str, value: &str) -> Result<(), Gs1Error> {
        let Some((idx, e)) = lookup(ai.as_bytes()) else {
            return Err(Gs1Error::detail(
                ErrorKind::UnknownAi,
                None,
                Detail::NotAnAi { bracketed: false },
            )
            .quoting(ai.as_bytes()));
        };
        if value.is_empty() {
            return Err(Gs1Error::at(
                ErrorKind::EmptyValue,
                e.ai,
                None,
                "the value is empty",
            ));
        }
        check_total_length(e, idx, value.as_bytes(), 0)?;
        let start = self.buf.len();
        self.buf.extend_from_slice(value.as_bytes());
        self.elems.push(Elem {
            idx,
            start: start as u32,
            end: self.buf.len() as u32,
            pos: 0,
            classes: 0,
        });
        Ok(())
    }
}

impl Gs1Data {
    /// Builds validated data from (AI, value) pairs, as if they had been scanned.
    ///
    /// ```
    /// use swt_domain::gs1::Gs1Data;
    /// let d = Gs1Data::from_ais(&[("01", "09506000134352"), ("10", "ABC")]).unwrap();
    /// assert_eq!(d.to_bracketed(), "(01)09506000134352(10)ABC");
    /// ```
    pub fn from_ais(pairs: &[(&str, &str)]) -> Result<Gs1Data, Gs1Error> {
        Self::from_ais_as(pairs, InputForm::Bracketed)
    }

    pub(crate) fn from_ais_as(
        pairs: &[(&str, &str)],
        form: InputForm,
    ) -> Result<Gs1Data, Gs1Error> {
        let mut b = Builder::empty();
        for (ai, v) in pairs {
            b.push_pair(ai, v)?;
        }
        b.validate_values()?;
        b.finish(form, None, &ParseOptions::default(), false)?;
        Ok(b)
    }

    fn elem_value(&self, el: &Elem) -> &str {
        self.buf.str(el.start as usize..el.end as usize)
    }

    /// The form the input was recognised as.
    pub fn form(&self) -> InputForm {
        self.form
    }

    /// The symbology identifier the scanner sent, if any.
    pub fn symbology(&self) -> Option<SymbologyId> {
        self.symbology
    }

    /// Whether the data carries GS1 AIs. Always true for what [`parse`](super::parse)
    /// returns (data that is not GS1 fails with `not_gs1`); false only for data built from
    /// no AIs at all.
    pub fn is_gs1(&self) -> bool {
        !self.elems.as_slice().is_empty()
    }

    /// Number of AI elements (repeats included).
    pub fn len(&self) -> usize {
        self.elems.as_slice().len()
    }

    /// Whether there are no AI elements.
    pub fn is_empty(&self) -> bool {
        self.elems.as_slice().is_empty()
    }

    /// All AIs in order, repeats included.
    pub fn iter(&self) -> impl Iterator<Item = AiValue<'_>> + '_ {
        self.elems.as_slice().iter().map(|el| {
            let e = entry(el.idx);
            AiValue {
                ai: e.ai,
                value: self.elem_value(el),
                title: e.title,
            }
        })
    }

    /// The value of the first occurrence of `ai`.
    pub fn get(&self, ai: &str) -> Option<&str> {
        self.iter().find(|x| x.ai == ai).map(|x| x.value)
    }

    /// Warnings (valid data that deserves a second look). Worked out on the first call
    /// (the heuristics cost more than a typical parse, and most callers never ask), then
    /// kept.
    pub fn warnings(&self) -> &[Warning] {
        self.warnings.get_or_init(|| {
            let mut out = Vec::new();
            if self.warn != WarnScope::None {
                let element_form = self.warn == WarnScope::ElementString;
                warn::collect(
                    self.buf.as_slice(),
                    self.elems.as_slice(),
                    element_form,
                    &mut out,
                );
            }
            out
        })
    }

    /// The GTIN (01).
    pub fn gtin(&self) -> Option<Gtin> {
        self.get("01").and_then(|v| Gtin::parse(v).ok())
    }

    /// The SSCC (00).
    pub fn sscc(&self) -> Option<Sscc> {
        self.get("00").and_then(|v| Sscc::parse(v).ok())
    }

    /// The physical location GLN (414).
    pub fn gln(&self) -> Option<Gln> {
        self.gln_of("414")
    }

    /// The GLN of any GLN AI, 410–417 (ship to, bill to, purchase from, ship for,
    /// location, pay to, production location, party).
    pub fn gln_of(&self, ai: &str) -> Option<Gln> {
        if !matches!(
            ai,
            "410" | "411" | "412" | "413" | "414" | "415" | "416" | "417"
        ) {
            return None;
        }
        self.get(ai).and_then(|v| Gln::parse(v).ok())
    }

    /// The DSCSA/FMD product identifier (needs a GTIN), expiry resolved against the
    /// current year.
    pub fn product_identifier(&self) -> Option<ProductIdentifier> {
        self.product_identifier_at(current_year())
    }

    /// [`product_identifier`](Self::product_identifier) with an explicit current year for
    /// the century window (reproducible results in tests and replays).
    pub fn product_identifier_at(&self, current_year: u16) -> Option<ProductIdentifier> {
        let gtin = self.gtin()?;
        let expiry = self.get("17").and_then(|v| {
            Date::from_yymmdd(v, current_year).map(|date| Expiry {
                yymmdd: v.to_owned(),
                date,
            })
        });
        Some(ProductIdentifier {
            gtin,
            serial: self.get("21").map(str::to_owned),
            lot: self.get("10").map(str::to_owned),
            expiry,
        })
    }

    /// The element string: AIs in order, GS (0x1D) after every value that needs a
    /// separator except the last. No symbology identifier.
    pub fn to_element_string(&self) -> String {
        let mut s = String::with_capacity(self.buf.len() + 16);
        let elems = self.elems.as_slice();
        for (i, el) in elems.iter().enumerate() {
            let e = entry(el.idx);
            s.push_str(e.ai);
            s.push_str(self.elem_value(el));
            let b = e.ai.as_bytes();
            let fixed = predefined_len(b[0], b[1]).is_some();
            if !fixed && i + 1 < elems.len() {
                s.push(char::from(GS));
            }
        }
        s
    }

    /// The bracketed form, `(01)...(10)...`, with `(` in data escaped as `\(`.
    pub fn to_bracketed(&self) -> String {
        let mut s = String::with_capacity(self.buf.len() + 32);
        for x in self.iter() {
            s.push('(');
            s.push_str(x.ai);
            s.push(')');
            for c in x.value.chars() {
                if c == '(' {
                    s.push('\\');
                }
                s.push(c);
            }
        }
        s
    }

    /// The GS1 Digital Link URI under `stem` (e.g. `https://id.gs1.org` or a bare domain
    /// like `example.com`, which gets `https://`).
    ///
    /// ```
    /// use swt_domain::gs1::{parse_str, ParseOptions};
    /// let d = parse_str("(01)09520123456788(10)ABC1(21)12345(17)180426", &ParseOptions::default()).unwrap();
    /// assert_eq!(d.to_digital_link("https://id.gs1.org").unwrap(),
    ///            "https://id.gs1.org/01/09520123456788/10/ABC1/21/12345?17=180426");
    /// ```
    pub fn to_digital_link(&self, stem: &str) -> Result<String, Gs1Error> {
        let items: Vec<(&'static AiEntry, &str)> = self
            .elems
            .as_slice()
            .iter()
            .map(|el| (entry(el.idx), self.elem_value(el)))
            .collect();
        digital_link::generate(&items, stem)
    }
}

impl fmt::Display for Gs1Data {
    /// The bracketed form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_bracketed())
    }
}
