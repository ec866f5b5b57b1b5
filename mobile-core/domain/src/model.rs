//! Domain records shared by the scanner and the server: scans and their encoding.
//!
//! Owns the scan record (an immutable fact) and its compact, versioned binary form, plus
//! the void record. It knows nothing of Automerge (see `doc`) nor of GS1 parsing (see
//! `gs1`): parsed identifiers arrive filled by the caller, GTIN and SSCC as the checked
//! key types of `gs1` (a record read back is checked the same way).
//! The byte layout is specified in `docs/task-document.md`; keep the two in step.

use std::fmt;

use thiserror::Error;

use crate::gs1::{Gtin, Sscc};

/// Current version byte of an encoded scan record.
pub const SCAN_RECORD_VERSION: u8 = 1;
/// Current version byte of an encoded void record.
pub const VOID_RECORD_VERSION: u8 = 1;

/// Largest raw barcode accepted (a GS1 DataMatrix holds at most 1,556 bytes of data).
pub const MAX_RAW_LEN: usize = 2048;
/// Largest user id, device id, location, parent or scan id, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Largest serial or lot (GS1 allows 20; a swallowed separator can make it longer and
/// that is still a fact worth keeping, so allow the longest GS1 data field).
pub const MAX_ATTR_LEN: usize = 90;

/// Why a record could not be encoded or decoded. Decoding never panics: every malformed
/// input ends here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The input ended before the record was complete.
    #[error("record truncated")]
    Truncated,
    /// The version byte is not one this build understands.
    #[error("unsupported record version {0}")]
    UnsupportedVersion(u8),
    /// A LEB128 integer ran past 64 bits.
    #[error("varint overflow")]
    VarintOverflow,
    /// Flag bits reserved for later versions are set.
    #[error("reserved flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// Bytes follow the last field.
    #[error("{0} trailing bytes after record")]
    TrailingBytes(usize),
    /// A field's value breaks its rule (length, alphabet, span outside the raw bytes).
    #[error("invalid field {field}: {why}")]
    InvalidField {
        /// Field name as in the schema document.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// A globally unique scan id: the key of the scan in a task document.
///
/// 1–64 bytes of `[A-Za-z0-9._:-]`. Two constructors exist: [`ScanId::from_device_counter`]
/// (device prefix + counter, the smallest in a saved document) and [`ScanId::new_v7`]
/// (UUIDv7, needs no persisted counter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScanId(String);

impl ScanId {
    /// Checks and wraps an id read from a document, a file or the caller.
    pub fn parse(s: &str) -> Result<Self, RecordError> {
        if s.is_empty() || s.len() > MAX_NAME_LEN {
            return Err(RecordError::InvalidField {
                field: "scan_id",
                why: "length must be 1..=64",
            });
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(RecordError::InvalidField {
                field: "scan_id",
                why: "allowed characters are A-Z a-z 0-9 . _ : -",
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// `<prefix>.<counter in base 36>`: unique when the prefix is unique per device install
    /// (e.g. the install's actor id in hex) and the counter never repeats on it.
    pub fn from_device_counter(prefix: &str, counter: u64) -> Result<Self, RecordError> {
        Self::parse(&format!("{prefix}.{}", base36(counter)))
    }

    /// A fresh UUIDv7 in 32 lowercase hex digits: unique without any stored state.
    pub fn new_v7() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ScanId {
    type Err = RecordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::with_capacity(13);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

crate::code_table! {
    /// What the user did with the scanned item.
    pub enum Action: u8 {
        /// Goods received into the site.
        Receive = 1 => "receive",
        /// Put away into a storage location.
        Store = 2 => "store",
        /// Picked for an order.
        Pick = 3 => "pick",
        /// Packed into a parent container (aggregation).
        Pack = 4 => "pack",
        /// Taken out of a container (disaggregation).
        Unpack = 5 => "unpack",
        /// Shipped out.
        Ship = 6 => "ship",
        /// Returned by a customer.
        Return = 7 => "return",
        /// Counted in a stock count.
        Count = 8 => "count",
        /// Moved between locations.
        Move = 9 => "move",
        /// Put into quarantine.
        Quarantine = 10 => "quarantine",
        /// Destroyed.
        Destroy = 11 => "destroy",
        /// Checked only (e.g. a verification look-up), no movement.
        Inspect = 12 => "inspect",
    }
}

crate::code_table! {
    /// The feedback the device showed the user for this scan.
    pub enum Feedback: u8 {
        /// Accepted.
        Ok = 0 => "ok",
        /// Accepted with a warning not covered below.
        Warning = 1 => "warning",
        /// The same item was already scanned in this task.
        Duplicate = 2 => "duplicate",
        /// The item is not expected in this task.
        NotExpected = 3 => "not_expected",
        /// The pack is expired.
        Expired = 4 => "expired",
        /// The lot is recalled.
        Recalled = 5 => "recalled",
        /// The serial is blocked or quarantined.
        Blocked = 6 => "blocked",
        /// The GTIN is not in the product master.
        UnknownProduct = 7 => "unknown_product",
        /// The barcode could not be read or parsed; the raw bytes are kept.
        ReadFailed = 8 => "read_failed",
        /// A variable-length field looks like it swallowed another AI (lost FNC1).
        SeparatorSuspected = 9 => "separator_suspected",
        /// More than the expected quantity.
        OverQuantity = 10 => "over_quantity",
        /// Lot differs from the expected lot.
        WrongLot = 11 => "wrong_lot",
        /// Expiry is within the site's short-dated window.
        ShortExpiry = 12 => "short_expiry",
        /// The label is not what this kind of task takes (rules `wrong_task_kind`).
        WrongTaskKind = 13 => "wrong_task_kind",
        /// The task is closed, cancelled or continued: no more scans.
        TaskClosed = 14 => "task_closed",
    }
}

/// Identifiers parsed from the raw barcode by the caller (the gs1 engine): GTIN and SSCC
/// as checked keys (digits and check digit), the attributes as GS1 text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    /// GTIN-14.
    pub gtin: Option<Gtin>,
    /// Serial number (AI 21).
    pub serial: Option<String>,
    /// Batch/lot (AI 10).
    pub lot: Option<String>,
    /// Expiry date YYMMDD (AI 17), 6 digits.
    pub expiry: Option<String>,
    /// SSCC (AI 00).
    pub sscc: Option<Sscc>,
}

/// One scan: an immutable fact recorded by a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Globally unique id; the key in the document, not repeated inside the record.
    pub id: ScanId,
    /// Barcode bytes exactly as the scanner delivered them (may be empty or garbage for a
    /// failed read).
    pub raw: Vec<u8>,
    /// Parsed identifiers (all `None` for a failed read).
    pub ids: Identifiers,
    /// What was done.
    pub action: Action,
    /// The logged-in user.
    pub user: String,
    /// The registered device.
    pub device: String,
    /// Where (bin, dock door, GLN…), if known.
    pub location: Option<String>,
    /// Device clock, ms since the Unix epoch.
    pub device_time_ms: u64,
    /// What the device showed.
    pub feedback: Feedback,
    /// Parent container for pack/unpack (e.g. the SSCC packed into).
    pub parent: Option<String>,
}

/// A scan record decoded in place: every field borrows from the record bytes (an
/// identifier stored as a span borrows from `raw`). Reading a whole document's scans this
/// way (the rules' index on open) allocates nothing per field; [`ScanRecord::to_scan`]
/// makes the owned [`Scan`]. Same fields and rules as [`Scan`], without the id (the
/// document key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanRecord<'a> {
    /// Barcode bytes as delivered.
    pub raw: &'a [u8],
    /// GTIN-14.
    pub gtin: Option<&'a str>,
    /// Serial number (AI 21).
    pub serial: Option<&'a str>,
    /// Batch/lot (AI 10).
    pub lot: Option<&'a str>,
    /// Expiry date YYMMDD (AI 17).
    pub expiry: Option<&'a str>,
    /// SSCC (AI 00).
    pub sscc: Option<&'a str>,
    /// What was done.
    pub action: Action,
    /// The user.
    pub user: &'a str,
    /// The device.
    pub device: &'a str,
    /// Where, if known.
    pub location: Option<&'a str>,
    /// Device clock, ms since the Unix epoch.
    pub device_time_ms: u64,
    /// What the device showed.
    pub feedback: Feedback,
    /// Parent container, if any.
    pub parent: Option<&'a str>,
}

impl<'a> ScanRecord<'a> {
    /// Decodes and validates an encoded scan record. Never panics; garbage gives a
    /// [`RecordError`].
    pub fn decode(bytes: &'a [u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != SCAN_RECORD_VERSION {
            return Err(RecordError::UnsupportedVersion(version));
        }
        let flags = r.u8()?;
        if flags & F_RESERVED != 0 {
            return Err(RecordError::ReservedFlags(flags & F_RESERVED));
        }
        let action = Action::from_code(r.u8()?);
        let feedback = Feedback::from_code(r.u8()?);
        let device_time_ms = r.varint()?;
        let user = r.str_ref("user")?;
        let device = r.str_ref("device")?;
        let raw = r.bytes()?;
        let location = if flags & F_LOCATION != 0 {
            Some(r.str_ref("location")?)
        } else {
            None
        };
        let parent = if flags & F_PARENT != 0 {
            Some(r.str_ref("parent")?)
        } else {
            None
        };
        let mut ident = |bit: u8, field: &'static str| -> Result<Option<&'a str>, RecordError> {
            if flags & bit == 0 {
                return Ok(None);
            }
            r.ident(raw, field).map(Some)
        };
        let gtin = ident(F_GTIN, "gtin")?;
        let serial = ident(F_SERIAL, "serial")?;
        let lot = ident(F_LOT, "lot")?;
        let expiry = ident(F_EXPIRY, "expiry")?;
        let sscc = ident(F_SSCC, "sscc")?;
        if r.remaining() != 0 {
            return Err(RecordError::TrailingBytes(r.remaining()));
        }
        let record = Self {
            raw,
            gtin,
            serial,
            lot,
            expiry,
            sscc,
            action,
            user,
            device,
            location,
            device_time_ms,
            feedback,
            parent,
        };
        record.validate()?;
        Ok(record)
    }

    /// Checks every field against the record's rules.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.raw.len() > MAX_RAW_LEN {
            return Err(RecordError::InvalidField {
                field: "raw",
                why: "longer than 2048 bytes",
            });
        }
        check_name("user", self.user)?;
        check_name("device", self.device)?;
        if let Some(l) = self.location {
            check_name("location", l)?;
        }
        if let Some(p) = self.parent {
            check_name("parent", p)?;
        }
        if let Some(g) = self.gtin {
            gtin_field(g)?;
        }
        if let Some(s) = self.serial {
            check_attr("serial", s)?;
        }
        if let Some(l) = self.lot {
            check_attr("lot", l)?;
        }
        if let Some(e) = self.expiry {
            check_digits("expiry", e, 6)?;
        }
        if let Some(s) = self.sscc {
            sscc_field(s)?;
        }
        Ok(())
    }

    /// The owned scan, recorded under `id`. The GTIN and SSCC become their key types by
    /// the same check [`ScanRecord::validate`] makes, so for a decoded record this cannot
    /// fail; a record built by hand and never validated gets the error instead of a
    /// silently dropped identifier.
    pub fn to_scan(&self, id: ScanId) -> Result<Scan, RecordError> {
        Ok(Scan {
            id,
            raw: self.raw.to_vec(),
            ids: Identifiers {
                gtin: self.gtin.map(gtin_field).transpose()?,
                serial: self.serial.map(str::to_owned),
                lot: self.lot.map(str::to_owned),
                expiry: self.expiry.map(str::to_owned),
                sscc: self.sscc.map(sscc_field).transpose()?,
            },
            action: self.action,
            user: self.user.to_owned(),
            device: self.device.to_owned(),
            location: self.location.map(str::to_owned),
            device_time_ms: self.device_time_ms,
            feedback: self.feedback,
            parent: self.parent.map(str::to_owned),
        })
    }
}

/// A scan taken back by the user who made it. Scans are never deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Void {
    /// The scan voided; the key in the `voids` section.
    pub scan_id: ScanId,
    /// Who took it back.
    pub user: String,
    /// On which device.
    pub device: String,
    /// Device clock, ms since the Unix epoch.
    pub device_time_ms: u64,
}

const F_LOCATION: u8 = 1 << 0;
const F_PARENT: u8 = 1 << 1;
const F_GTIN: u8 = 1 << 2;
const F_SERIAL: u8 = 1 << 3;
const F_LOT: u8 = 1 << 4;
const F_EXPIRY: u8 = 1 << 5;
const F_SSCC: u8 = 1 << 6;
const F_RESERVED: u8 = 1 << 7;

fn check_name(field: &'static str, s: &str) -> Result<(), RecordError> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(RecordError::InvalidField {
            field,
            why: "length must be 1..=64 bytes",
        });
    }
    if s.chars().any(char::is_control) {
        return Err(RecordError::InvalidField {
            field,
            why: "control characters",
        });
    }
    Ok(())
}

fn check_digits(field: &'static str, s: &str, n: usize) -> Result<(), RecordError> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecordError::InvalidField {
            field,
            why: "wrong number of digits",
        });
    }
    Ok(())
}

/// A stored GTIN: exactly 14 digits (the record holds GTIN-14, never a shorter form to
/// pad) with a valid check digit.
fn gtin_field(s: &str) -> Result<Gtin, RecordError> {
    check_digits("gtin", s, 14)?;
    Gtin::parse(s).map_err(|_| RecordError::InvalidField {
        field: "gtin",
        why: "wrong check digit",
    })
}

/// A stored SSCC: 18 digits with a valid check digit.
fn sscc_field(s: &str) -> Result<Sscc, RecordError> {
    check_digits("sscc", s, 18)?;
    Sscc::parse(s).map_err(|_| RecordError::InvalidField {
        field: "sscc",
        why: "wrong check digit",
    })
}

fn check_attr(field: &'static str, s: &str) -> Result<(), RecordError> {
    if s.is_empty() || s.len() > MAX_ATTR_LEN {
        return Err(RecordError::InvalidField {
            field,
            why: "length must be 1..=90 bytes",
        });
    }
    if !s.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(RecordError::InvalidField {
            field,
            why: "printable ASCII without space only",
        });
    }
    Ok(())
}

impl Scan {
    /// Checks every field against the record's rules (also run by encode and decode).
    pub fn validate(&self) -> Result<(), RecordError> {
        self.as_record().validate()
    }

    /// This scan's fields, borrowed, as [`ScanRecord::decode`] would give them back.
    pub fn as_record(&self) -> ScanRecord<'_> {
        ScanRecord {
            raw: &self.raw,
            gtin: self.ids.gtin.as_ref().map(Gtin::as_str),
            serial: self.ids.serial.as_deref(),
            lot: self.ids.lot.as_deref(),
            expiry: self.ids.expiry.as_deref(),
            sscc: self.ids.sscc.as_ref().map(Sscc::as_str),
            action: self.action,
            user: &self.user,
            device: &self.device,
            location: self.location.as_deref(),
            device_time_ms: self.device_time_ms,
            feedback: self.feedback,
            parent: self.parent.as_deref(),
        }
    }

    /// Encodes the record (everything but the id, which is the document key).
    ///
    /// A parsed identifier that occurs verbatim in `raw` is stored as a span
    /// (offset, length) into `raw` rather than a second copy: the saved document stays
    /// within budget and a reader still needs no GS1 knowledge, only a slice.
    pub fn encode_record(&self) -> Result<Vec<u8>, RecordError> {
        self.validate()?;
        let mut out = Vec::with_capacity(self.raw.len() + 48);
        let mut flags = 0u8;
        let opt = [
            (F_LOCATION, self.location.is_some()),
            (F_PARENT, self.parent.is_some()),
            (F_GTIN, self.ids.gtin.is_some()),
            (F_SERIAL, self.ids.serial.is_some()),
            (F_LOT, self.ids.lot.is_some()),
            (F_EXPIRY, self.ids.expiry.is_some()),
            (F_SSCC, self.ids.sscc.is_some()),
        ];
        for (bit, present) in opt {
            if present {
                flags |= bit;
            }
        }
        out.push(SCAN_RECORD_VERSION);
        out.push(flags);
        out.push(self.action.code());
        out.push(self.feedback.code());
        put_varint(&mut out, self.device_time_ms);
        put_bytes(&mut out, self.user.as_bytes());
        put_bytes(&mut out, self.device.as_bytes());
        put_bytes(&mut out, &self.raw);
        for s in [&self.location, &self.parent].into_iter().flatten() {
            put_bytes(&mut out, s.as_bytes());
        }
        let ids = &self.ids;
        for s in [
            ids.gtin.as_ref().map(Gtin::as_str),
            ids.serial.as_deref(),
            ids.lot.as_deref(),
            ids.expiry.as_deref(),
            ids.sscc.as_ref().map(Sscc::as_str),
        ]
        .into_iter()
        .flatten()
        {
            put_ident(&mut out, &self.raw, s.as_bytes());
        }
        Ok(out)
    }

    /// Decodes a record stored under `id`. Never panics; garbage gives a [`RecordError`].
    pub fn decode_record(id: ScanId, bytes: &[u8]) -> Result<Scan, RecordError> {
        ScanRecord::decode(bytes)?.to_scan(id)
    }

    /// Reads only the user id of an encoded record (the server's vetting needs no more).
    pub fn record_user(bytes: &[u8]) -> Result<String, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != SCAN_RECORD_VERSION {
            return Err(RecordError::UnsupportedVersion(version));
        }
        r.u8()?;
        r.u8()?;
        r.u8()?;
        r.varint()?;
        r.string("user")
    }
}

impl Void {
    /// Encodes the void record (everything but the scan id, which is the key).
    pub fn encode_record(&self) -> Result<Vec<u8>, RecordError> {
        check_name("user", &self.user)?;
        check_name("device", &self.device)?;
        let mut out = Vec::with_capacity(24 + self.user.len() + self.device.len());
        out.push(VOID_RECORD_VERSION);
        put_varint(&mut out, self.device_time_ms);
        put_bytes(&mut out, self.user.as_bytes());
        put_bytes(&mut out, self.device.as_bytes());
        Ok(out)
    }

    /// Decodes a void record stored under `scan_id`.
    pub fn decode_record(scan_id: ScanId, bytes: &[u8]) -> Result<Void, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VOID_RECORD_VERSION {
            return Err(RecordError::UnsupportedVersion(version));
        }
        let device_time_ms = r.varint()?;
        let user = r.string("user")?;
        let device = r.string("device")?;
        if r.remaining() != 0 {
            return Err(RecordError::TrailingBytes(r.remaining()));
        }
        check_name("user", &user)?;
        check_name("device", &device)?;
        Ok(Void {
            scan_id,
            user,
            device,
            device_time_ms,
        })
    }
}

/// A product in the site's product master.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Product {
    /// GTIN-14 (serialised as its 14 digits).
    pub gtin: Gtin,
    /// Display name.
    pub name: String,
    /// Whether packs carry a serial (DSCSA/FMD serialized product).
    pub serialized: bool,
    /// US National Drug Code, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndc: Option<String>,
    /// Pack size as printed (e.g. "30 tablets").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_size: Option<String>,
}

/// A (GTIN, lot) pair, e.g. a recalled lot.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct LotKey {
    /// GTIN-14 (serialised as its 14 digits).
    pub gtin: Gtin,
    /// Lot.
    pub lot: String,
}

/// A (GTIN, serial) pair, e.g. a blocked or quarantined pack.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SerialKey {
    /// GTIN-14 (serialised as its 14 digits).
    pub gtin: Gtin,
    /// Serial.
    pub serial: String,
}

/// The site's expiry policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpiryPolicy {
    /// Packs expiring within this many days get `short_expiry`.
    pub min_remaining_days: u32,
    /// Whether expired packs are rejected (else warned).
    pub reject_expired: bool,
}

/// A storage location of the site (bin, shelf, dock, quarantine cage).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The code on the location's label, as scanners record it.
    pub code: String,
    /// Display name.
    pub name: String,
}

/// Keys grouped by GTIN: `{gtin: [lot or serial, …]}`. A site may block hundreds of
/// thousands of serials of a few products; grouping stores and sends each GTIN once and
/// answers a lookup without building a key.
pub type ByGtin = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// A site's reference data, as downloaded by version. Never assumed fresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReferenceData {
    /// Site id.
    pub site: String,
    /// Version; each delta moves it from one version to a higher one.
    pub version: u64,
    /// Product master by GTIN.
    pub products: std::collections::BTreeMap<String, Product>,
    /// Recalled lots, by GTIN.
    #[serde(default)]
    pub recalled_lots: ByGtin,
    /// Blocked serials (quarantined, suspect, illegitimate, decommissioned…), by GTIN.
    #[serde(default)]
    pub blocked_serials: ByGtin,
    /// Expiry policy.
    pub expiry_policy: ExpiryPolicy,
    /// The site's locations by code.
    #[serde(default)]
    pub locations: std::collections::BTreeMap<String, Location>,
}

/// A change to reference data from `from_version` to `to_version`. Removals apply before
/// upserts, so a delta may remove and re-add the same key.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReferenceDelta {
    /// Site id.
    pub site: String,
    /// Version the delta applies to; must equal the stored version.
    pub from_version: u64,
    /// Version after the delta; must be greater than `from_version`.
    pub to_version: u64,
    /// Products added or replaced.
    #[serde(default)]
    pub upsert_products: Vec<Product>,
    /// GTINs removed from the product master.
    #[serde(default)]
    pub remove_products: Vec<String>,
    /// Lots newly recalled.
    #[serde(default)]
    pub add_recalled_lots: Vec<LotKey>,
    /// Recalls lifted.
    #[serde(default)]
    pub remove_recalled_lots: Vec<LotKey>,
    /// Serials newly blocked.
    #[serde(default)]
    pub add_blocked_serials: Vec<SerialKey>,
    /// Serials unblocked.
    #[serde(default)]
    pub remove_blocked_serials: Vec<SerialKey>,
    /// New expiry policy, if it changed.
    #[serde(default)]
    pub expiry_policy: Option<ExpiryPolicy>,
    /// Locations added or renamed.
    #[serde(default)]
    pub upsert_locations: Vec<Location>,
    /// Location codes removed.
    #[serde(default)]
    pub remove_locations: Vec<String>,
}

fn remove_keyed(map: &mut ByGtin, gtin: &str, item: &str) {
    if let Some(set) = map.get_mut(gtin) {
        set.remove(item);
        if set.is_empty() {
            map.remove(gtin);
        }
    }
}

/// Why a reference delta was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeltaError {
    /// The delta is for another site.
    #[error("delta for site {delta}, data for site {stored}")]
    WrongSite {
        /// Stored site.
        stored: String,
        /// Delta's site.
        delta: String,
    },
    /// The delta does not start at the stored version (fetch a full copy or the right delta).
    #[error("delta starts at version {from}, stored version is {stored}")]
    VersionMismatch {
        /// Stored version.
        stored: u64,
        /// Delta's `from_version`.
        from: u64,
    },
    /// `to_version` is not greater than `from_version`.
    #[error("delta does not move forward ({from} -> {to})")]
    NotForward {
        /// From.
        from: u64,
        /// To.
        to: u64,
    },
}

impl ReferenceData {
    /// Applies a delta, all or nothing: checks first, then changes `self`.
    pub fn apply_delta(&mut self, d: &ReferenceDelta) -> Result<(), DeltaError> {
        if d.site != self.site {
            return Err(DeltaError::WrongSite {
                stored: self.site.clone(),
                delta: d.site.clone(),
            });
        }
        if d.from_version != self.version {
            return Err(DeltaError::VersionMismatch {
                stored: self.version,
                from: d.from_version,
            });
        }
        if d.to_version <= d.from_version {
            return Err(DeltaError::NotForward {
                from: d.from_version,
                to: d.to_version,
            });
        }
        for g in &d.remove_products {
            self.products.remove(g);
        }
        for p in &d.upsert_products {
            self.products.insert(p.gtin.to_string(), p.clone());
        }
        for l in &d.remove_recalled_lots {
            remove_keyed(&mut self.recalled_lots, l.gtin.as_str(), &l.lot);
        }
        for l in &d.add_recalled_lots {
            self.recall(l.gtin.as_str(), &l.lot);
        }
        for s in &d.remove_blocked_serials {
            remove_keyed(&mut self.blocked_serials, s.gtin.as_str(), &s.serial);
        }
        for s in &d.add_blocked_serials {
            self.block(s.gtin.as_str(), &s.serial);
        }
        if let Some(p) = &d.expiry_policy {
            self.expiry_policy = p.clone();
        }
        for c in &d.remove_locations {
            self.locations.remove(c);
        }
        for l in &d.upsert_locations {
            self.locations.insert(l.code.clone(), l.clone());
        }
        self.version = d.to_version;
        Ok(())
    }

    /// True if the lot is recalled.
    pub fn is_recalled(&self, gtin: &str, lot: &str) -> bool {
        self.recalled_lots
            .get(gtin)
            .is_some_and(|lots| lots.contains(lot))
    }

    /// True if the serial is blocked.
    pub fn is_blocked(&self, gtin: &str, serial: &str) -> bool {
        self.blocked_serials
            .get(gtin)
            .is_some_and(|serials| serials.contains(serial))
    }

    /// Marks a lot recalled.
    pub fn recall(&mut self, gtin: &str, lot: &str) {
        self.recalled_lots
            .entry(gtin.to_owned())
            .or_default()
            .insert(lot.to_owned());
    }

    /// Marks a serial blocked.
    pub fn block(&mut self, gtin: &str, serial: &str) {
        self.blocked_serials
            .entry(gtin.to_owned())
            .or_default()
            .insert(serial.to_owned());
    }

    /// Number of blocked serials (over every GTIN).
    pub fn blocked_count(&self) -> usize {
        self.blocked_serials.values().map(|s| s.len()).sum()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// An identifier: varint tag = len << 1 | literal; a span is followed by a varint offset
/// into `raw`, a literal by its bytes.
fn put_ident(out: &mut Vec<u8>, raw: &[u8], value: &[u8]) {
    let len = value.len() as u64;
    match find(raw, value) {
        Some(off) => {
            put_varint(out, len << 1);
            put_varint(out, off as u64);
        }
        None => {
            put_varint(out, (len << 1) | 1);
            out.extend_from_slice(value);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        let b = *self.buf.get(self.pos).ok_or(RecordError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let part = u64::from(b & 0x7f);
            // The 10th byte may only carry the top bit of a u64.
            if shift == 63 && part > 1 {
                return Err(RecordError::VarintOverflow);
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::VarintOverflow)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], RecordError> {
        let n = usize::try_from(n).map_err(|_| RecordError::Truncated)?;
        if n > self.remaining() {
            return Err(RecordError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.varint()?;
        self.take(n)
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| RecordError::InvalidField {
            field,
            why: "not UTF-8",
        })
    }

    fn str_ref(&mut self, field: &'static str) -> Result<&'a str, RecordError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| RecordError::InvalidField {
            field,
            why: "not UTF-8",
        })
    }

    fn ident(&mut self, raw: &'a [u8], field: &'static str) -> Result<&'a str, RecordError> {
        let tag = self.varint()?;
        let len = tag >> 1;
        let bytes = if tag & 1 == 1 {
            self.take(len)?
        } else {
            let off = self.varint()?;
            let end = off.checked_add(len).ok_or(RecordError::InvalidField {
                field,
                why: "span overflows",
            })?;
            if end > raw.len() as u64 {
                return Err(RecordError::InvalidField {
                    field,
                    why: "span outside raw bytes",
                });
            }
            &raw[off as usize..end as usize]
        };
        std::str::from_utf8(bytes).map_err(|_| RecordError::InvalidField {
            field,
            why: "not UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Scan {
        let raw = b"010950600013435221ABCdef1234567\x1d1726123110LOT42".to_vec();
        Scan {
            id: ScanId::parse("dev1.1").unwrap(),
            raw,
            ids: Identifiers {
                gtin: Some("09506000134352".parse().unwrap()),
                serial: Some("ABCdef1234567".into()),
                lot: Some("LOT42".into()),
                expiry: Some("261231".into()),
                sscc: None,
            },
            action: Action::Pick,
            user: "u-17".into(),
            device: "scanner-3".into(),
            location: Some("A-01-02".into()),
            device_time_ms: 1_764_000_000_123,
            feedback: Feedback::Ok,
            parent: None,
        }
    }

    #[test]
    fn round_trip_uses_spans_for_verbatim_identifiers() {
        let s = sample();
        let bytes = s.encode_record().unwrap();
        // 4 header + 6 time + 5 user + 10 device + 1+49 raw + 8 location + 4 spans × 2.
        assert_eq!(bytes.len(), 4 + 6 + 5 + 10 + 1 + s.raw.len() + 8 + 8);
        assert_eq!(Scan::decode_record(s.id.clone(), &bytes).unwrap(), s);
        assert_eq!(Scan::record_user(&bytes).unwrap(), "u-17");
    }

    #[test]
    fn record_decoded_in_place_is_the_scan() {
        let s = sample();
        let bytes = s.encode_record().unwrap();
        let r = ScanRecord::decode(&bytes).unwrap();
        assert_eq!(r, s.as_record());
        assert_eq!(r.to_scan(s.id.clone()).unwrap(), s);
        // Spans borrow from the record's raw bytes, not copies.
        let serial = r.serial.unwrap().as_ptr() as usize;
        let raw = r.raw.as_ptr() as usize;
        assert!((raw..raw + r.raw.len()).contains(&serial));
        assert!(ScanRecord::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn worked_example_bytes() {
        // The example in docs/task-document.md §5.
        let s = sample();
        let b = s.encode_record().unwrap();
        assert_eq!(&b[..4], &[0x01, 0x3d, 0x03, 0x00]);
        let tail = [
            &[7u8][..],
            b"A-01-02",
            &[0x1c, 0x02, 0x1a, 0x12, 0x0a, 0x2a, 0x0c, 0x22],
        ]
        .concat();
        assert!(b.ends_with(&tail), "{b:02x?}");
        let head = [&[0x04u8][..], b"u-17", &[0x09], b"scanner-3", &[0x2f]].concat();
        assert_eq!(&b[10..10 + head.len()], &head[..]);
    }

    #[test]
    fn identifiers_not_in_raw_are_literals() {
        let mut s = sample();
        s.raw = b"garbled".to_vec();
        let bytes = s.encode_record().unwrap();
        assert_eq!(Scan::decode_record(s.id.clone(), &bytes).unwrap(), s);
    }

    #[test]
    fn failed_read_keeps_raw_bytes() {
        let mut s = sample();
        s.raw = vec![0xff, 0x00, 0x1d];
        s.ids = Identifiers::default();
        s.feedback = Feedback::ReadFailed;
        let bytes = s.encode_record().unwrap();
        assert_eq!(Scan::decode_record(s.id.clone(), &bytes).unwrap(), s);
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let id = ScanId::parse("x").unwrap();
        assert_eq!(
            Scan::decode_record(id.clone(), &[]),
            Err(RecordError::Truncated)
        );
        assert_eq!(
            Scan::decode_record(id.clone(), &[9]),
            Err(RecordError::UnsupportedVersion(9))
        );
        assert_eq!(
            Scan::decode_record(id.clone(), &[1, 0x80, 1, 0]),
            Err(RecordError::ReservedFlags(0x80))
        );
        let mut good = sample().encode_record().unwrap();
        good.push(0);
        assert_eq!(
            Scan::decode_record(id.clone(), &good),
            Err(RecordError::TrailingBytes(1))
        );
        // A span pointing past the raw bytes.
        let mut s = sample();
        s.ids = Identifiers {
            gtin: Some("09506000134352".parse().unwrap()),
            ..Default::default()
        };
        let mut b = s.encode_record().unwrap();
        let last = b.len() - 1;
        b[last] = 100;
        assert!(matches!(
            Scan::decode_record(id, &b),
            Err(RecordError::InvalidField { field: "gtin", .. })
        ));
    }

    /// A stored GTIN or SSCC with a wrong check digit (digit count right) is refused at
    /// decode, never passed on nor altered.
    #[test]
    fn decode_refuses_a_wrong_check_digit() {
        let id = ScanId::parse("dev1.1").unwrap();
        let good = sample().encode_record().unwrap();
        // The GTIN is a span into raw: "01" then the 14 digits; break its check digit.
        let mut bad = good.clone();
        let at = bad
            .windows(14)
            .position(|w| w == b"09506000134352")
            .unwrap();
        bad[at + 13] = b'3';
        assert!(matches!(
            Scan::decode_record(id.clone(), &bad),
            Err(RecordError::InvalidField { field: "gtin", .. })
        ));
        assert!(matches!(
            ScanRecord::decode(&bad),
            Err(RecordError::InvalidField { field: "gtin", .. })
        ));
        // A hand-built record that skipped validation is refused by to_scan too.
        let r = ScanRecord::decode(&good).unwrap();
        let r = ScanRecord {
            gtin: Some("09506000134353"),
            ..r
        };
        assert!(matches!(
            r.to_scan(id.clone()),
            Err(RecordError::InvalidField { field: "gtin", .. })
        ));
        let r = ScanRecord {
            sscc: Some("106141411234567898"),
            ..ScanRecord::decode(&good).unwrap()
        };
        assert!(matches!(
            r.validate(),
            Err(RecordError::InvalidField { field: "sscc", .. })
        ));
        assert!(matches!(
            r.to_scan(id),
            Err(RecordError::InvalidField { field: "sscc", .. })
        ));
    }

    #[test]
    fn encode_refuses_invalid_fields() {
        let mut s = sample();
        s.user = String::new();
        assert!(s.encode_record().is_err());
    }

    #[test]
    fn scan_ids() {
        assert_eq!(
            ScanId::from_device_counter("ab12", 36 * 36)
                .unwrap()
                .as_str(),
            "ab12.100"
        );
        assert!(ScanId::parse("a/b").is_err());
        assert!(ScanId::parse("").is_err());
        assert_eq!(ScanId::new_v7().as_str().len(), 32);
        assert_ne!(ScanId::new_v7(), ScanId::new_v7());
    }

    #[test]
    fn codes_are_stable() {
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), *a);
        }
        for f in Feedback::ALL {
            assert_eq!(Feedback::from_code(f.code()), *f);
        }
        assert_eq!(Action::Pick.code(), 3);
        assert_eq!(Feedback::ReadFailed.as_str(), "read_failed");
        assert_eq!(Action::from_code(200), Action::Other(200));
    }

    #[test]
    fn reference_delta_checks_version_and_applies() {
        let mut r = ReferenceData {
            site: "s1".into(),
            version: 3,
            ..Default::default()
        };
        let mut d = ReferenceDelta {
            site: "s1".into(),
            from_version: 2,
            to_version: 4,
            add_recalled_lots: vec![LotKey {
                gtin: "09506000134352".parse().unwrap(),
                lot: "L1".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            r.apply_delta(&d),
            Err(DeltaError::VersionMismatch { stored: 3, from: 2 })
        );
        d.from_version = 3;
        d.to_version = 3;
        assert!(matches!(
            r.apply_delta(&d),
            Err(DeltaError::NotForward { .. })
        ));
        d.to_version = 4;
        d.site = "s2".into();
        assert!(matches!(
            r.apply_delta(&d),
            Err(DeltaError::WrongSite { .. })
        ));
        assert_eq!(r.version, 3, "refused deltas change nothing");
        d.site = "s1".into();
        r.apply_delta(&d).unwrap();
        assert_eq!(r.version, 4);
        assert!(r.is_recalled("09506000134352", "L1"));
    }

    #[test]
    fn void_round_trip_and_garbage() {
        let v = Void {
            scan_id: ScanId::parse("d.1").unwrap(),
            user: "u".into(),
            device: "d".into(),
            device_time_ms: 5,
        };
        let b = v.encode_record().unwrap();
        assert_eq!(Void::decode_record(v.scan_id.clone(), &b).unwrap(), v);
        assert!(Void::decode_record(v.scan_id.clone(), &b[..2]).is_err());
    }

    fn opt_digits(n: usize) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(proptest::string::string_regex(&format!("[0-9]{{{n}}}")).unwrap())
    }

    /// Any key of `N` digits with its check digit appended.
    fn opt_key<T>(body: usize, key: fn(&str) -> T) -> impl Strategy<Value = Option<T>>
    where
        T: std::fmt::Debug,
    {
        proptest::option::of(
            proptest::string::string_regex(&format!("[0-9]{{{body}}}"))
                .unwrap()
                .prop_map(move |mut d| {
                    d.push(char::from(crate::gs1::mod10_check_digit(d.as_bytes())));
                    key(&d)
                }),
        )
    }

    fn opt_attr() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(proptest::string::string_regex("[!-~]{1,30}").unwrap())
    }

    fn opt_name() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(proptest::string::string_regex("[a-zA-Z0-9 é-]{1,20}").unwrap())
    }

    fn arb_scan() -> impl Strategy<Value = Scan> {
        (
            proptest::collection::vec(any::<u8>(), 0..120),
            (
                opt_key(13, |d| Gtin::parse(d).unwrap()),
                opt_attr(),
                opt_attr(),
                opt_digits(6),
                opt_key(17, |d| Sscc::parse(d).unwrap()),
            ),
            any::<u8>(),
            any::<u8>(),
            "[a-z0-9]{1,20}",
            "[a-z0-9]{1,20}",
            (opt_name(), opt_name()),
            any::<u64>(),
            any::<bool>(),
        )
            .prop_map(
                |(
                    mut raw,
                    (gtin, serial, lot, expiry, sscc),
                    a,
                    f,
                    user,
                    device,
                    (loc, par),
                    t,
                    embed,
                )| {
                    // Half the time put the identifiers into the raw bytes so spans are exercised.
                    if embed {
                        let texts = [
                            gtin.as_ref().map(Gtin::as_str),
                            serial.as_deref(),
                            lot.as_deref(),
                            expiry.as_deref(),
                            sscc.as_ref().map(Sscc::as_str),
                        ];
                        for s in texts.into_iter().flatten() {
                            raw.extend_from_slice(s.as_bytes());
                        }
                    }
                    Scan {
                        id: ScanId::parse("p.1").unwrap(),
                        raw,
                        ids: Identifiers {
                            gtin,
                            serial,
                            lot,
                            expiry,
                            sscc,
                        },
                        action: Action::from_code(a),
                        user,
                        device,
                        location: loc,
                        device_time_ms: t,
                        feedback: Feedback::from_code(f),
                        parent: par,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn prop_round_trip(s in arb_scan()) {
            let b = s.encode_record().unwrap();
            prop_assert_eq!(Scan::decode_record(s.id.clone(), &b).unwrap(), s);
        }

        #[test]
        fn prop_garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Scan::decode_record(ScanId::parse("g").unwrap(), &b);
            let _ = Void::decode_record(ScanId::parse("g").unwrap(), &b);
            let _ = Scan::record_user(&b);
        }

        #[test]
        fn prop_truncation_is_detected(s in arb_scan(), cut in 0usize..1000) {
            let b = s.encode_record().unwrap();
            let cut = cut % b.len();
            prop_assert!(Scan::decode_record(s.id.clone(), &b[..cut]).is_err());
        }
    }
}
