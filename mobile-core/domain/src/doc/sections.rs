//! The server-owned sections `header` and `expected`: their types (task kind and status,
//! expected lines and units) and how they are written to and read from the document.

use std::collections::BTreeMap;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjType, ReadDoc, ScalarValue, Value};

use super::{DocError, K_EXPECTED, K_HEADER, TaskDocument, get_obj, str_at};
use crate::gs1::Gtin;

crate::code_table! {
    /// Kind of warehouse work a document covers.
    pub enum TaskKind {
        /// Inbound shipment / ASN.
        Receiving = "receiving",
        /// Pick order.
        Picking = "picking",
        /// Packing / aggregation job.
        Packing = "packing",
        /// Outbound shipment.
        Shipping = "shipping",
        /// Returns session.
        Returns = "returns",
        /// Stock count.
        StockCount = "stock_count",
    }
    /// Stable name as stored in the document.
    fn as_str;
}

crate::code_table! {
    /// Lifecycle of a task, set by the server.
    pub enum TaskStatus {
        /// Created, scanning allowed.
        Open = "open",
        /// Closed: no more scans expected; late scans still merge and are flagged.
        Closed = "closed",
        /// Cancelled.
        Cancelled = "cancelled",
        /// Full: continue in a follow-on document (documents are kept bounded).
        Continued = "continued",
    }
    /// Stable name as stored in the document.
    fn as_str;
}

/// The business reference the server writes into a task once its follow-on task exists:
/// the follow-on's id. A device working on the task opens the follow-on from it.
pub const CONTINUED_IN_REF: &str = "continued_in";

/// The server-owned `header` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Kind of work.
    pub kind: TaskKind,
    /// Site id.
    pub site: String,
    /// Business references: `po`, `asn`, `order`, `shipment`, … → value.
    pub refs: BTreeMap<String, String>,
    /// Status.
    pub status: TaskStatus,
}

/// One expected line: a GTIN and a quantity, optionally a required lot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedLine {
    /// GTIN-14 (stored as its 14 digits).
    pub gtin: Gtin,
    /// Expected number of packs.
    pub quantity: u64,
    /// If set, only this lot is acceptable.
    pub lot: Option<String>,
}

/// A known serialized unit or container, with its parent in the packing hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedUnit {
    /// `sscc:<18 digits>` or `sgtin:<gtin14>:<serial>`.
    pub id: String,
    /// The unit id of its parent container, if any.
    pub parent: Option<String>,
}

/// The server-owned `expected` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Quantity lines.
    pub lines: Vec<ExpectedLine>,
    /// Known units (parent → children is derived from each unit's parent); read back in
    /// id order.
    pub units: Vec<ExpectedUnit>,
}

impl TaskDocument {
    pub(super) fn write_header(&mut self, h: &Header) -> Result<(), DocError> {
        let header = self.section(K_HEADER)?;
        self.doc.put(&header, "kind", h.kind.as_str())?;
        self.doc.put(&header, "site", h.site.as_str())?;
        self.doc.put(&header, "status", h.status.as_str())?;
        let refs = self.doc.put_object(&header, "refs", ObjType::Map)?;
        for (k, v) in &h.refs {
            self.doc.put(&refs, k.as_str(), v.as_str())?;
        }
        Ok(())
    }

    /// Replaces the header (server only) and commits.
    pub fn set_header(&mut self, h: &Header, time_s: i64) -> Result<(), DocError> {
        self.write_header(h)?;
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Sets only the status (server only) and commits.
    pub fn set_status(&mut self, status: TaskStatus, time_s: i64) -> Result<(), DocError> {
        let header = self.section(K_HEADER)?;
        self.doc.put(&header, "status", status.as_str())?;
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Sets one business reference (server only) and commits.
    pub fn set_ref(&mut self, key: &str, value: &str, time_s: i64) -> Result<(), DocError> {
        let header = self.section(K_HEADER)?;
        let refs = match get_obj(&self.doc, &header, "refs") {
            Some(r) => r,
            None => self.doc.put_object(&header, "refs", ObjType::Map)?,
        };
        self.doc.put(&refs, key, value)?;
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Reads the header.
    pub fn header(&self) -> Result<Header, DocError> {
        let header = self.section(K_HEADER)?;
        let p = K_HEADER;
        let kind_s =
            str_at(&self.doc, &header, "kind", p)?.ok_or(DocError::Missing("header.kind"))?;
        let kind = TaskKind::parse(&kind_s).ok_or_else(|| DocError::Invalid {
            path: "header.kind".into(),
            why: format!("unknown kind {kind_s:?}"),
        })?;
        let status_s =
            str_at(&self.doc, &header, "status", p)?.ok_or(DocError::Missing("header.status"))?;
        let status = TaskStatus::parse(&status_s).ok_or_else(|| DocError::Invalid {
            path: "header.status".into(),
            why: format!("unknown status {status_s:?}"),
        })?;
        let site =
            str_at(&self.doc, &header, "site", p)?.ok_or(DocError::Missing("header.site"))?;
        let mut refs = BTreeMap::new();
        if let Some(r) = get_obj(&self.doc, &header, "refs") {
            for item in self.doc.map_range(&r, ..) {
                let key = item.key.to_string();
                if let Some(v) = str_at(&self.doc, &r, &key, "header.refs")? {
                    refs.insert(key, v);
                }
            }
        }
        Ok(Header {
            kind,
            site,
            refs,
            status,
        })
    }

    // ---- expected (server) ----

    /// Replaces the expected lines and units (server only) and commits.
    pub fn set_expected(&mut self, e: &Expected, time_s: i64) -> Result<(), DocError> {
        let expected = self.section(K_EXPECTED)?;
        let lines = self.doc.put_object(&expected, "lines", ObjType::List)?;
        for (i, l) in e.lines.iter().enumerate() {
            let m = self.doc.insert_object(&lines, i, ObjType::Map)?;
            self.doc.put(&m, "gtin", l.gtin.as_str())?;
            self.doc.put(&m, "qty", l.quantity)?;
            if let Some(lot) = &l.lot {
                self.doc.put(&m, "lot", lot.as_str())?;
            }
        }
        let units = self.doc.put_object(&expected, "units", ObjType::Map)?;
        for u in &e.units {
            self.doc
                .put(&units, u.id.as_str(), u.parent.as_deref().unwrap_or(""))?;
        }
        self.doc
            .commit_with(CommitOptions::default().with_time(time_s));
        Ok(())
    }

    /// Reads the expected section.
    pub fn expected(&self) -> Result<Expected, DocError> {
        let expected = self.section(K_EXPECTED)?;
        let mut out = Expected::default();
        if let Some(lines) = get_obj(&self.doc, &expected, "lines") {
            for i in 0..self.doc.length(&lines) {
                let m = match self.doc.get(&lines, i)? {
                    Some((Value::Object(ObjType::Map), id)) => id,
                    _ => return Err(DocError::WrongType(format!("expected.lines[{i}]"))),
                };
                let path = format!("expected.lines[{i}]");
                let text = str_at(&self.doc, &m, "gtin", &path)?
                    .ok_or(DocError::Missing("expected.lines[].gtin"))?;
                // Exactly the 14 digits the server wrote: a shorter GTIN is not padded,
                // a wrong check digit is not passed on.
                let gtin = Gtin::parse(&text)
                    .ok()
                    .filter(|g| g.as_str() == text)
                    .ok_or_else(|| DocError::Invalid {
                        path: format!("{path}.gtin"),
                        why: "not a GTIN-14 with a valid check digit".to_owned(),
                    })?;
                let quantity = match self.doc.get(&m, "qty")? {
                    Some((Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Uint(v) => *v,
                        ScalarValue::Int(v) if *v >= 0 => *v as u64,
                        _ => return Err(DocError::WrongType(format!("{path}.qty"))),
                    },
                    _ => return Err(DocError::Missing("expected.lines[].qty")),
                };
                let lot = str_at(&self.doc, &m, "lot", &path)?;
                out.lines.push(ExpectedLine {
                    gtin,
                    quantity,
                    lot,
                });
            }
        }
        if let Some(units) = get_obj(&self.doc, &expected, "units") {
            for item in self.doc.map_range(&units, ..) {
                let id = item.key.to_string();
                let parent =
                    str_at(&self.doc, &units, &id, "expected.units")?.filter(|p| !p.is_empty());
                out.units.push(ExpectedUnit { id, parent });
            }
        }
        Ok(out)
    }

    // ---- scans (devices) ----
}
