//! The GS1 Lightweight Messaging Standard for Verification of Product Identifiers (LMS),
//! as DSCSA Verification Router Service clients speak it (GS1 US guideline release 1.3):
//! parsing requests, building and reading responses. Pure: no I/O.
//!
//! A request is a GET on a GS1 Digital Link URI in the short-name form of Digital Link 1.0
//! (`/gtin/{gtin14}/lot/{lot}/ser/{serial}?exp=YYMMDD&linkType=verificationService&…`)
//! appended to the responder's base URL. As a tolerance the numeric-AI form
//! (`/01/{gtin}/10/{lot}/21/{serial}?17=YYMMDD`) is accepted on input; we never send it.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use swt_domain::gs1::{self, Gln, Gs1Data, Gtin, ParseOptions};

/// The `linkType` every DSCSA VRS source sends (bare, no `gs1:` prefix).
pub const LINK_TYPE: &str = "verificationService";
/// Accepted on input as a tolerance, never sent.
pub const LINK_TYPE_PREFIXED: &str = "gs1:verificationService";
/// The guideline version we speak, sent in the `GS1US-Version` header.
pub const GS1US_VERSION: &str = "1.3.0";
/// The header naming the guideline version.
pub const VERSION_HEADER: &str = "GS1US-Version";

/// A request the responder cannot take: HTTP 400 with this code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BadRequest {
    /// Stable code, e.g. `bad_gtin`, `missing_serial`, `bad_link_type`.
    pub code: &'static str,
    /// What was wrong, in words.
    pub message: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> BadRequest {
    BadRequest {
        code,
        message: message.into(),
    }
}

/// Why a verification was asked for (`context`). Only the strings seen in DSCSA VRS
/// sources are known; any other is refused rather than guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// `dscsaSaleableReturn`.
    SaleableReturn,
    /// `dscsaExceptionVerification`.
    ExceptionVerification,
}

impl Context {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Context::SaleableReturn => "dscsaSaleableReturn",
            Context::ExceptionVerification => "dscsaExceptionVerification",
        }
    }

    /// Parses the wire string (exact: these are identifiers, not prose).
    pub fn parse(s: &str) -> Result<Context, BadRequest> {
        match s {
            "dscsaSaleableReturn" => Ok(Context::SaleableReturn),
            "dscsaExceptionVerification" => Ok(Context::ExceptionVerification),
            other => Err(bad(
                "bad_context",
                format!(
                    "context {other:?} is not one this responder knows \
                     (dscsaSaleableReturn, dscsaExceptionVerification)"
                ),
            )),
        }
    }
}

/// `data.verificationFailureReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureReason {
    /// GTIN and serial do not match anything held (lot and expiry are then not checked).
    #[serde(rename = "No_match_GTIN_Serial")]
    NoMatchGtinSerial,
    /// The serial exists with another lot.
    #[serde(rename = "No_match_GTIN_Serial_Lot")]
    NoMatchGtinSerialLot,
    /// The serial exists with another expiry.
    #[serde(rename = "No_match_GTIN_Serial_Expiry")]
    NoMatchGtinSerialExpiry,
    /// The serial exists with another lot and another expiry.
    #[serde(rename = "No_match_GTIN_Serial_Lot_Expiry")]
    NoMatchGtinSerialLotExpiry,
    /// No match, no reason given.
    #[serde(rename = "No_reason_provided")]
    NoReasonProvided,
    /// The manufacturer's policy says no (recalled, expired, unfit…).
    #[serde(rename = "Manufacturer_policy")]
    ManufacturerPolicy,
    /// Must not be distributed again (suspect, illegitimate, decommissioned).
    #[serde(rename = "Not_for_re-distribution")]
    NotForRedistribution,
}

impl FailureReason {
    /// All values, in the guideline's order.
    pub const ALL: [FailureReason; 7] = [
        FailureReason::NoMatchGtinSerial,
        FailureReason::NoMatchGtinSerialLot,
        FailureReason::NoMatchGtinSerialExpiry,
        FailureReason::NoMatchGtinSerialLotExpiry,
        FailureReason::NoReasonProvided,
        FailureReason::ManufacturerPolicy,
        FailureReason::NotForRedistribution,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::NoMatchGtinSerial => "No_match_GTIN_Serial",
            FailureReason::NoMatchGtinSerialLot => "No_match_GTIN_Serial_Lot",
            FailureReason::NoMatchGtinSerialExpiry => "No_match_GTIN_Serial_Expiry",
            FailureReason::NoMatchGtinSerialLotExpiry => "No_match_GTIN_Serial_Lot_Expiry",
            FailureReason::NoReasonProvided => "No_reason_provided",
            FailureReason::ManufacturerPolicy => "Manufacturer_policy",
            FailureReason::NotForRedistribution => "Not_for_re-distribution",
        }
    }

    /// Reads a peer's value leniently (letter case ignored).
    pub fn parse_lenient(s: &str) -> Option<FailureReason> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `data.additionalInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AdditionalInfo {
    /// The lot is recalled.
    Recalled,
    /// The pack is past its expiry.
    Expired,
    /// FDA extended the expiry: the pack is still good.
    ExpirationExtended,
    /// The pack is suspect product.
    Suspect,
    /// The pack is illegitimate product.
    Illegitimate,
}

impl AdditionalInfo {
    /// All values.
    pub const ALL: [AdditionalInfo; 5] = [
        AdditionalInfo::Recalled,
        AdditionalInfo::Expired,
        AdditionalInfo::ExpirationExtended,
        AdditionalInfo::Suspect,
        AdditionalInfo::Illegitimate,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            AdditionalInfo::Recalled => "Recalled",
            AdditionalInfo::Expired => "Expired",
            AdditionalInfo::ExpirationExtended => "ExpirationExtended",
            AdditionalInfo::Suspect => "Suspect",
            AdditionalInfo::Illegitimate => "Illegitimate",
        }
    }

    /// Reads a peer's value leniently: older responders send `recalled`.
    pub fn parse_lenient(s: &str) -> Option<AdditionalInfo> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for AdditionalInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DSCSA product identifier: GTIN, lot, serial and expiry, all validated as GS1 values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProductId {
    /// The GTIN (always 14 digits on the wire).
    pub gtin: Gtin,
    /// AI (10).
    pub lot: String,
    /// AI (21).
    pub serial: String,
    /// AI (17), `YYMMDD` as printed (DD may be 00).
    pub expiry: String,
}

impl ProductId {
    /// Validates the four values with the GS1 engine (check digit, character set,
    /// lengths, a real date), so the responder and requester agree with the scanner.
    pub fn new(gtin: &str, lot: &str, serial: &str, expiry: &str) -> Result<ProductId, BadRequest> {
        if gtin.len() != 14 {
            return Err(bad(
                "bad_gtin",
                format!("GTIN {gtin:?} must be the 14-digit form"),
            ));
        }
        let gtin_v = Gtin::parse(gtin).map_err(|e| bad("bad_gtin", e.to_string()))?;
        // One value at a time so the error names the parameter that is wrong.
        for (ai, v, code) in [
            ("10", lot, "bad_lot"),
            ("21", serial, "bad_serial"),
            ("17", expiry, "bad_expiry"),
        ] {
            Gs1Data::from_ais(&[("01", gtin), (ai, v)]).map_err(|e| bad(code, e.to_string()))?;
        }
        Ok(ProductId {
            gtin: gtin_v,
            lot: lot.to_owned(),
            serial: serial.to_owned(),
            expiry: expiry.to_owned(),
        })
    }
}

/// A parsed verification request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The identifier to verify.
    pub id: ProductId,
    /// Why.
    pub context: Context,
    /// The requestor's GLN.
    pub req_gln: Gln,
    /// Correlation UUID, echoed in the response.
    pub corr_uuid: String,
    /// The requestor has the product in its possession or control (1.3).
    pub ctrl_possess_att: Option<bool>,
    /// Requestor contact e-mail (1.3).
    pub email: Option<String>,
    /// Requestor contact telephone (1.3).
    pub telephone: Option<String>,
}

/// A parsed `checkConnectivity` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectivityRequest {
    /// The GTIN the requestor means to verify.
    pub gtin: Gtin,
    /// The requestor's GLN.
    pub req_gln: Gln,
    /// Optional context.
    pub context: Option<Context>,
}

/// Query parameters, decoded; a parameter given twice is refused (which one would count?).
struct Query<'a> {
    pairs: Vec<(String, String)>,
    _raw: &'a str,
}

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Result<Query<'a>, BadRequest> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(bad(
                    "duplicate_parameter",
                    format!("query parameter {k:?} is given more than once"),
                ));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Query { pairs, _raw: raw })
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(pk, _)| pk == k)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, k: &str, code: &'static str) -> Result<&str, BadRequest> {
        match self.get(k) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(bad(code, format!("query parameter {k} is required"))),
        }
    }
}

fn parse_gln(s: &str) -> Result<Gln, BadRequest> {
    Gln::parse(s).map_err(|e| bad("bad_req_gln", format!("reqGLN {s:?}: {e}")))
}

fn parse_uuid(s: &str) -> Result<String, BadRequest> {
    uuid::Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| bad("bad_corr_uuid", format!("corrUUID {s:?} is not a UUID")))
}

fn decode_segment(s: &str) -> Result<String, BadRequest> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            bad(
                "bad_encoding",
                "a path segment is not UTF-8 after percent-decoding",
            )
        })
}

/// Parses a verification request: `path` is what follows the base path (starting with
/// `/`), `query` the raw query string.
pub fn parse_verify(path: &str, query: &str) -> Result<VerifyRequest, BadRequest> {
    let q = Query::parse(query)?;
    match q.get("linkType") {
        Some(LINK_TYPE) | Some(LINK_TYPE_PREFIXED) => {}
        Some(other) => {
            return Err(bad(
                "bad_link_type",
                format!("linkType {other:?} is not {LINK_TYPE}"),
            ));
        }
        None => {
            return Err(bad(
                "missing_link_type",
                format!("query parameter linkType={LINK_TYPE} is required"),
            ));
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let id = match segments.first().copied() {
        Some("gtin") => short_name_id(&segments, &q)?,
        Some("01") => numeric_id(path, &q)?,
        _ => {
            return Err(bad(
                "bad_path",
                "expected /gtin/{GTIN-14}/lot/{lot}/ser/{serial}",
            ));
        }
    };
    let context = Context::parse(q.required("context", "missing_context")?)?;
    let req_gln = parse_gln(q.required("reqGLN", "missing_req_gln")?)?;
    let corr_uuid = parse_uuid(q.required("corrUUID", "missing_corr_uuid")?)?;
    let ctrl_possess_att = match q.get("ctrlPossessAtt") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(bad(
                "bad_ctrl_possess_att",
                format!("ctrlPossessAtt {v:?} is neither true nor false"),
            ));
        }
    };
    Ok(VerifyRequest {
        id,
        context,
        req_gln,
        corr_uuid,
        ctrl_possess_att,
        email: q.get("email").map(str::to_owned),
        telephone: q.get("telephone").map(str::to_owned),
    })
}

/// `/gtin/{gtin}/lot/{lot}/ser/{serial}` and `?exp=`.
fn short_name_id(seg: &[&str], q: &Query<'_>) -> Result<ProductId, BadRequest> {
    let (gtin, lot, serial) = match seg {
        ["gtin", g, "lot", l, "ser", s] => (*g, *l, *s),
        ["gtin", _, "ser", ..] => {
            return Err(bad(
                "missing_lot",
                "the path needs /lot/{lot} before /ser/{serial}",
            ));
        }
        ["gtin", _, "lot", _] | ["gtin", _, "lot", _, "ser"] => {
            return Err(bad("missing_serial", "the path needs /ser/{serial}"));
        }
        ["gtin", _] => {
            return Err(bad(
                "missing_lot",
                "the path needs /lot/{lot}/ser/{serial} after the GTIN",
            ));
        }
        _ => {
            return Err(bad(
                "bad_path",
                "expected /gtin/{GTIN-14}/lot/{lot}/ser/{serial}",
            ));
        }
    };
    let (lot, serial) = (decode_segment(lot)?, decode_segment(serial)?);
    if serial.is_empty() {
        return Err(bad("missing_serial", "the serial is empty"));
    }
    if lot.is_empty() {
        return Err(bad("missing_lot", "the lot is empty"));
    }
    let exp = q.required("exp", "missing_expiry")?;
    ProductId::new(gtin, &lot, &serial, exp)
}

/// The numeric-AI tolerance: parsed by the GS1 engine's Digital Link parser, so every
/// Digital Link rule (order, qualifiers, percent-encoding) holds exactly as for scans.
fn numeric_id(path: &str, q: &Query<'_>) -> Result<ProductId, BadRequest> {
    let mut uri = format!("https://responder.invalid{path}");
    if let Some(exp) = q.get("17") {
        uri.push_str("?17=");
        uri.extend(utf8_percent_encode(exp, SEGMENT));
    }
    let data = gs1::parse_str(&uri, &ParseOptions::default())
        .map_err(|e| bad("bad_path", format!("Digital Link: {e}")))?;
    let field = |ai: &str, code: &'static str, what: &str| {
        data.get(ai)
            .map(str::to_owned)
            .ok_or_else(|| bad(code, format!("the request has no {what} (AI {ai})")))
    };
    let gtin = field("01", "bad_path", "GTIN")?;
    let lot = field("10", "missing_lot", "lot")?;
    let serial = field("21", "missing_serial", "serial")?;
    let exp = field("17", "missing_expiry", "expiry")?;
    ProductId::new(&gtin, &lot, &serial, &exp)
}

/// Parses `checkConnectivity?gtin=…&reqGLN=…[&context=…]`.
pub fn parse_connectivity(query: &str) -> Result<ConnectivityRequest, BadRequest> {
    let q = Query::parse(query)?;
    let g = q.required("gtin", "missing_gtin")?;
    if g.len() != 14 {
        return Err(bad(
            "bad_gtin",
            format!("GTIN {g:?} must be the 14-digit form"),
        ));
    }
    let gtin = Gtin::parse(g).map_err(|e| bad("bad_gtin", e.to_string()))?;
    let req_gln = parse_gln(q.required("reqGLN", "missing_req_gln")?)?;
    let context = q.get("context").map(Context::parse).transpose()?;
    Ok(ConnectivityRequest {
        gtin,
        req_gln,
        context,
    })
}

/// Characters left alone in a path segment or query value: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The path and query a requester sends (short-name form, `linkType=verificationService`),
/// to append to the responder's base URL.
pub fn request_path(req: &VerifyRequest) -> String {
    let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    let mut out = format!(
        "/gtin/{}/lot/{}/ser/{}?exp={}&linkType={LINK_TYPE}&context={}&reqGLN={}&corrUUID={}",
        req.id.gtin.as_str(),
        enc(&req.id.lot),
        enc(&req.id.serial),
        enc(&req.id.expiry),
        req.context.as_str(),
        req.req_gln.as_str(),
        enc(&req.corr_uuid),
    );
    if let Some(c) = req.ctrl_possess_att {
        out.push_str(if c {
            "&ctrlPossessAtt=true"
        } else {
            "&ctrlPossessAtt=false"
        });
    }
    for (k, v) in [("email", &req.email), ("telephone", &req.telephone)] {
        if let Some(v) = v {
            out.push('&');
            out.push_str(k);
            out.push('=');
            out.push_str(&enc(v));
        }
    }
    out
}

/// What a responder says about one identifier (`data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `data.verified`.
    pub verified: bool,
    /// `data.verificationFailureReason`, only when not verified.
    #[serde(
        rename = "verificationFailureReason",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_reason: Option<FailureReason>,
    /// `data.additionalInfo`.
    #[serde(rename = "additionalInfo", skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<AdditionalInfo>,
}

/// The 200 response body, exactly the LMS shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyResponse {
    /// When the responder answered (ISO 8601 UTC with milliseconds).
    #[serde(rename = "verificationTimestamp")]
    pub verification_timestamp: String,
    /// The responder's GLN.
    #[serde(rename = "responderGLN")]
    pub responder_gln: String,
    /// The answer.
    pub data: Verdict,
    /// The request's correlation UUID, at the top level.
    #[serde(rename = "corrUUID")]
    pub corr_uuid: String,
}

/// `checkConnectivity`'s 200 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectivityResponse {
    /// The responder's GLN.
    #[serde(rename = "responderGLN")]
    pub responder_gln: String,
}

/// Formats a timestamp as LMS writes it: `2019-05-17T16:48:53.428Z`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A peer's answer, read leniently. Values we do not know are kept as text so the record
/// says what the peer really sent; they count as "needs review".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAnswer {
    /// `data.verified`.
    pub verified: bool,
    /// `data.verificationFailureReason` as sent.
    pub failure_reason: Option<String>,
    /// `data.additionalInfo` as sent.
    pub additional_info: Option<String>,
    /// `responderGLN` as sent.
    pub responder_gln: Option<String>,
    /// `corrUUID` as sent.
    pub corr_uuid: Option<String>,
}

/// Why a peer's 200 body is not a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAnswerError {
    /// Not JSON.
    #[error("the responder's answer is not JSON: {0}")]
    NotJson(String),
    /// No boolean `data.verified`.
    #[error("the responder's answer has no boolean data.verified")]
    NoVerified,
    /// `corrUUID` is not the one we sent.
    #[error("the responder echoed corrUUID {got:?}, not {sent:?}")]
    CorrUuidMismatch {
        /// What we sent.
        sent: String,
        /// What came back.
        got: String,
    },
}

impl PeerAnswer {
    /// Reads a 200 body. `corrUUID` must echo ours when present (case-insensitively: it
    /// is a UUID); some responders put it inside `data`, which is accepted too.
    pub fn parse(body: &[u8], sent_corr: &str) -> Result<PeerAnswer, PeerAnswerError> {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| PeerAnswerError::NotJson(e.to_string()))?;
        let data = v.get("data").unwrap_or(&serde_json::Value::Null);
        let verified = data
            .get("verified")
            .and_then(serde_json::Value::as_bool)
            .ok_or(PeerAnswerError::NoVerified)?;
        let text =
            |o: &serde_json::Value, k: &str| o.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let corr = text(&v, "corrUUID").or_else(|| text(data, "corrUUID"));
        if let Some(got) = &corr
            && !got.eq_ignore_ascii_case(sent_corr)
        {
            return Err(PeerAnswerError::CorrUuidMismatch {
                sent: sent_corr.to_owned(),
                got: got.clone(),
            });
        }
        Ok(PeerAnswer {
            verified,
            failure_reason: text(data, "verificationFailureReason"),
            additional_info: text(data, "additionalInfo"),
            responder_gln: text(&v, "responderGLN"),
            corr_uuid: corr,
        })
    }
}

/// What a returned pack becomes, given an answer. `verified: true` alone never makes a
/// pack sellable: any additional information other than `ExpirationExtended` (including
/// a value we do not know) sends it to review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnDecision {
    /// Verified, nothing to add (or only `ExpirationExtended`): back to sellable stock.
    Sellable,
    /// Verified, but with information a person must look at.
    Review,
    /// Not verified: quarantine and investigate.
    Quarantine,
}

impl ReturnDecision {
    /// Decides from the answer's fields.
    pub fn of(verified: bool, additional_info: Option<&str>) -> ReturnDecision {
        if !verified {
            return ReturnDecision::Quarantine;
        }
        match additional_info.map(str::trim).filter(|s| !s.is_empty()) {
            None => ReturnDecision::Sellable,
            Some(i)
                if AdditionalInfo::parse_lenient(i) == Some(AdditionalInfo::ExpirationExtended) =>
            {
                ReturnDecision::Sellable
            }
            Some(_) => ReturnDecision::Review,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GTIN: &str = "00312345678906";
    const Q: &str = "exp=270131&linkType=verificationService&context=dscsaSaleableReturn\
                     &reqGLN=0614141000005&corrUUID=3f9d2c1e-6a1b-4c44-9c2e-0a7b1d9e5f11";

    #[test]
    fn parses_the_primer_request() {
        let q = format!(
            "{Q}&ctrlPossessAtt=true&email=returns%40wholesaler.example&telephone=%2B15555550100"
        );
        let r = parse_verify("/gtin/00312345678906/lot/LOT42/ser/SN000123", &q).unwrap();
        assert_eq!(r.id.gtin.as_str(), GTIN);
        assert_eq!(
            (
                r.id.lot.as_str(),
                r.id.serial.as_str(),
                r.id.expiry.as_str()
            ),
            ("LOT42", "SN000123", "270131")
        );
        assert_eq!(r.context, Context::SaleableReturn);
        assert_eq!(r.req_gln.as_str(), "0614141000005");
        assert_eq!(r.corr_uuid, "3f9d2c1e-6a1b-4c44-9c2e-0a7b1d9e5f11");
        assert_eq!(r.ctrl_possess_att, Some(true));
        assert_eq!(r.email.as_deref(), Some("returns@wholesaler.example"));
        assert_eq!(r.telephone.as_deref(), Some("+15555550100"));
    }

    #[test]
    fn request_path_round_trips_through_the_parser() {
        let q = format!("{Q}&ctrlPossessAtt=false&email=a%2Bb%40x.example");
        let r = parse_verify("/gtin/00312345678906/lot/L%2F1%25/ser/S%22N%26%2B", &q).unwrap();
        assert_eq!(
            (r.id.lot.as_str(), r.id.serial.as_str()),
            ("L/1%", "S\"N&+")
        );
        let p = request_path(&r);
        assert!(p.starts_with("/gtin/00312345678906/lot/L%2F1%25/ser/S%22N%26%2B?exp=270131&linkType=verificationService&"), "{p}");
        let (path, query) = p.split_once('?').unwrap();
        assert_eq!(parse_verify(path, query).unwrap(), r);
    }

    #[test]
    fn numeric_form_and_prefixed_link_type_are_tolerated() {
        let q = Q.replace("exp=", "17=").replace(
            "linkType=verificationService",
            "linkType=gs1%3AverificationService",
        );
        let r = parse_verify("/01/00312345678906/10/LOT42/21/SN000123", &q).unwrap();
        assert_eq!(
            (
                r.id.lot.as_str(),
                r.id.serial.as_str(),
                r.id.expiry.as_str()
            ),
            ("LOT42", "SN000123", "270131")
        );
    }

    fn code(path: &str, q: &str) -> &'static str {
        parse_verify(path, q).unwrap_err().code
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        let p = "/gtin/00312345678906/lot/LOT42/ser/SN000123";
        assert_eq!(
            code("/gtin/00312345678907/lot/LOT42/ser/SN000123", Q),
            "bad_gtin"
        );
        assert_eq!(
            code("/gtin/0312345678906/lot/LOT42/ser/SN000123", Q),
            "bad_gtin"
        );
        assert_eq!(code("/gtin/00312345678906/lot/LOT42", Q), "missing_serial");
        assert_eq!(
            code("/gtin/00312345678906/lot/LOT42/ser/", Q),
            "missing_serial"
        );
        assert_eq!(code("/gtin/00312345678906/ser/SN000123", Q), "missing_lot");
        assert_eq!(
            code("/gtin/00312345678906/lot/LOT42/ser/SN%C3%A9", Q),
            "bad_serial"
        );
        assert_eq!(
            code(
                "/gtin/00312345678906/lot/LOT42/ser/ABCDEFGHIJKLMNOPQRSTU",
                Q
            ),
            "bad_serial"
        );
        assert_eq!(
            code(p, &Q.replace("exp=270131", "exp=271331")),
            "bad_expiry"
        );
        assert_eq!(code(p, &Q.replace("exp=270131", "exp=2701")), "bad_expiry");
        assert_eq!(code(p, &Q.replace("exp=270131&", "")), "missing_expiry");
        assert_eq!(
            code(p, &Q.replace("verificationService", "gs1:pip")),
            "bad_link_type"
        );
        assert_eq!(
            code(p, &Q.replace("linkType=verificationService&", "")),
            "missing_link_type"
        );
        assert_eq!(
            code(p, &Q.replace("dscsaSaleableReturn", "dscsaSomething")),
            "bad_context"
        );
        assert_eq!(
            code(p, &Q.replace("0614141000005", "0614141000006")),
            "bad_req_gln"
        );
        assert_eq!(code(p, &Q.replace("3f9d2c1e-", "zz")), "bad_corr_uuid");
        assert_eq!(
            code(p, &format!("{Q}&ctrlPossessAtt=yes")),
            "bad_ctrl_possess_att"
        );
        assert_eq!(code(p, &format!("{Q}&exp=270131")), "duplicate_parameter");
        assert_eq!(code("/lot/LOT42", Q), "bad_path");
        assert_eq!(
            code("/01/00312345678906/21/SN1", &Q.replace("exp=", "17=")),
            "missing_lot"
        );
    }

    #[test]
    fn connectivity_requests() {
        let c = parse_connectivity(
            "gtin=00312345678906&reqGLN=0614141000005&context=dscsaSaleableReturn",
        )
        .unwrap();
        assert_eq!(c.context, Some(Context::SaleableReturn));
        assert_eq!(
            parse_connectivity("reqGLN=0614141000005").unwrap_err().code,
            "missing_gtin"
        );
        assert_eq!(
            parse_connectivity("gtin=00312345678906").unwrap_err().code,
            "missing_req_gln"
        );
    }

    #[test]
    fn response_has_exactly_the_lms_shape() {
        let r = VerifyResponse {
            verification_timestamp: "2019-05-17T16:48:53.428Z".into(),
            responder_gln: "0614141000005".into(),
            data: Verdict {
                verified: false,
                failure_reason: Some(FailureReason::NoMatchGtinSerialLot),
                additional_info: None,
            },
            corr_uuid: "3f9d2c1e-6a1b-4c44-9c2e-0a7b1d9e5f11".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"verificationTimestamp":"2019-05-17T16:48:53.428Z","responderGLN":"0614141000005","data":{"verified":false,"verificationFailureReason":"No_match_GTIN_Serial_Lot"},"corrUUID":"3f9d2c1e-6a1b-4c44-9c2e-0a7b1d9e5f11"}"#
        );
        for r in FailureReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for i in AdditionalInfo::ALL {
            assert_eq!(serde_json::to_value(i).unwrap(), i.as_str());
        }
        let t = chrono::DateTime::parse_from_rfc3339("2019-05-17T16:48:53.428123Z").unwrap();
        assert_eq!(timestamp(t.into()), "2019-05-17T16:48:53.428Z");
    }

    #[test]
    fn peer_answers_are_read_leniently() {
        let corr = "3f9d2c1e-6a1b-4c44-9c2e-0a7b1d9e5f11";
        let a = PeerAnswer::parse(br#"{"data":{"verified":true,"additionalInfo":"recalled"},"corrUUID":"3F9D2C1E-6A1B-4C44-9C2E-0A7B1D9E5F11"}"#, corr).unwrap();
        assert!(a.verified);
        assert_eq!(
            ReturnDecision::of(a.verified, a.additional_info.as_deref()),
            ReturnDecision::Review
        );
        assert!(matches!(
            PeerAnswer::parse(b"{}", corr),
            Err(PeerAnswerError::NoVerified)
        ));
        assert!(matches!(
            PeerAnswer::parse(b"<html>", corr),
            Err(PeerAnswerError::NotJson(_))
        ));
        assert!(matches!(
            PeerAnswer::parse(
                br#"{"data":{"verified":true},"corrUUID":"00000000-0000-0000-0000-000000000000"}"#,
                corr
            ),
            Err(PeerAnswerError::CorrUuidMismatch { .. })
        ));
    }

    #[test]
    fn verified_alone_is_not_sellable() {
        use ReturnDecision::*;
        assert_eq!(ReturnDecision::of(true, None), Sellable);
        assert_eq!(
            ReturnDecision::of(true, Some("ExpirationExtended")),
            Sellable
        );
        assert_eq!(
            ReturnDecision::of(true, Some("expirationextended")),
            Sellable
        );
        for i in [
            "Recalled",
            "Expired",
            "Suspect",
            "Illegitimate",
            "SomethingNew",
        ] {
            assert_eq!(ReturnDecision::of(true, Some(i)), Review, "{i}");
        }
        assert_eq!(ReturnDecision::of(false, None), Quarantine);
        assert_eq!(
            ReturnDecision::of(false, Some("ExpirationExtended")),
            Quarantine
        );
    }
}
