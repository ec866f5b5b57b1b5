//! The device-owned sections `scans` and `voids`: adding scans (one transaction each, or a
//! checked batch), voiding them, and reading them back, decoded or as stored records.

use std::borrow::Cow;
use std::collections::HashSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ObjId, ReadDoc, ScalarValue};

use super::{DocError, K_SCANS, K_VOIDS, TaskDocument, bytes_ref, bytes_value};
use crate::model::{RecordError, Scan, ScanId, Void};

/// A scan id and its encoded record as stored (borrowed from the document where
/// Automerge allows).
pub type StoredRecord<'a> = (ScanId, Cow<'a, [u8]>);

impl TaskDocument {
    pub(super) fn scans_obj(&self) -> Result<&ObjId, DocError> {
        self.scans.as_ref().ok_or(DocError::Missing(K_SCANS))
    }

    fn voids_obj(&self) -> Result<&ObjId, DocError> {
        self.voids.as_ref().ok_or(DocError::Missing(K_VOIDS))
    }

    fn put_scan(&mut self, scan: &Scan) -> Result<(), DocError> {
        let record = scan.encode_record().map_err(|source| DocError::Record {
            id: scan.id.to_string(),
            source,
        })?;
        let scans = self.scans_obj()?.clone();
        if self.doc.get(&scans, scan.id.as_str())?.is_some() {
            return Err(DocError::DuplicateScan(scan.id.clone()));
        }
        self.doc
            .put(&scans, scan.id.as_str(), ScalarValue::Bytes(record))?;
        Ok(())
    }

    /// Adds one scan as one value and commits it as one change. Refuses an id already
    /// present (scans are immutable) and an invalid record; on error nothing is kept.
    pub fn add_scan(&mut self, scan: &Scan) -> Result<(), DocError> {
        if let Err(e) = self.put_scan(scan) {
            self.doc.rollback();
            return Err(e);
        }
        self.doc
            .commit_with(CommitOptions::default().with_time((scan.device_time_ms / 1000) as i64));
        Ok(())
    }

    /// Adds several scans in one change (bulk import); all or nothing.
    pub fn add_scans(&mut self, scans: &[Scan]) -> Result<(), DocError> {
        let scans_obj = self.scans_obj()?.clone();
        let mut ids = HashSet::with_capacity(scans.len());
        let mut records = Vec::with_capacity(scans.len());
        for s in scans {
            if !ids.insert(&s.id) || self.doc.get(&scans_obj, s.id.as_str())?.is_some() {
                return Err(DocError::DuplicateScan(s.id.clone()));
            }
            let record = s.encode_record().map_err(|source| DocError::Record {
                id: s.id.to_string(),
                source,
            })?;
            records.push(record);
        }
        let time_s = scans
            .last()
            .map(|s| (s.device_time_ms / 1000) as i64)
            .unwrap_or(0);
        self.append_scan_records(
            scans
                .iter()
                .map(|s| &s.id)
                .zip(records.iter().map(Vec::as_slice)),
            time_s,
        )?;
        Ok(())
    }

    /// Number of scans.
    pub fn scan_count(&self) -> usize {
        match &self.scans {
            Some(s) => self.doc.length(s),
            None => 0,
        }
    }

    /// True if a scan with this id is recorded.
    pub fn has_scan(&self, id: &ScanId) -> bool {
        match &self.scans {
            Some(s) => matches!(self.doc.get(s, id.as_str()), Ok(Some(_))),
            None => false,
        }
    }

    /// Every scan id in the document (one pass over the keys, no record decoding; keys
    /// that are not scan ids are skipped).
    pub fn scan_ids(&self) -> std::collections::HashSet<ScanId> {
        match &self.scans {
            Some(s) => self
                .doc
                .keys(s)
                .filter_map(|k| ScanId::parse(&k).ok())
                .collect(),
            None => std::collections::HashSet::new(),
        }
    }

    pub(crate) fn has_scan_key(&self, key: &str) -> bool {
        match &self.scans {
            Some(s) => matches!(self.doc.get(s, key), Ok(Some(_))),
            None => false,
        }
    }

    pub(crate) fn has_void_key(&self, key: &str) -> bool {
        match &self.voids {
            Some(s) => matches!(self.doc.get(s, key), Ok(Some(_))),
            None => false,
        }
    }

    /// The encoded record stored for `id`.
    pub fn scan_record(&self, id: &ScanId) -> Result<Option<Vec<u8>>, DocError> {
        let scans = self.scans_obj()?;
        match self.doc.get(scans, id.as_str())? {
            None => Ok(None),
            Some((v, _)) => bytes_value(&v)
                .map(Some)
                .ok_or_else(|| DocError::WrongType(format!("scans.{id}"))),
        }
    }

    /// Reads one scan.
    pub fn scan(&self, id: &ScanId) -> Result<Option<Scan>, DocError> {
        match self.scan_record(id)? {
            None => Ok(None),
            Some(b) => Scan::decode_record(id.clone(), &b)
                .map(Some)
                .map_err(|source| DocError::Record {
                    id: id.to_string(),
                    source,
                }),
        }
    }

    /// Every scan in id order; a value that does not decode is returned as its error so
    /// one bad entry never hides the others.
    pub fn scans(&self) -> Vec<Result<Scan, DocError>> {
        let Some(scans) = &self.scans else {
            return Vec::new();
        };
        self.decode_section(scans, K_SCANS, Scan::decode_record)
    }

    /// Every scan's id and encoded record, in id order, without decoding: the bytes are
    /// borrowed from the document (decode them with [`crate::model::ScanRecord::decode`]
    /// to read a large document without allocating per field). A key that is not a scan
    /// id or a value that is not bytes is returned as its error.
    pub fn scan_records(&self) -> Vec<Result<StoredRecord<'_>, DocError>> {
        let Some(scans) = &self.scans else {
            return Vec::new();
        };
        self.doc
            .map_range(scans, ..)
            .map(|item| {
                let id = ScanId::parse(&item.key).map_err(|source| DocError::Record {
                    id: item.key.to_string(),
                    source,
                })?;
                match item.value {
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Bytes(b)) => Ok((id, b)),
                    _ => Err(DocError::WrongType(format!("{K_SCANS}.{id}"))),
                }
            })
            .collect()
    }

    // ---- voids (devices) ----

    /// Voids a scan: only the user who made it, only once. The scan itself stays.
    pub fn void_scan(&mut self, void: &Void) -> Result<(), DocError> {
        let scan = self
            .scan(&void.scan_id)?
            .ok_or_else(|| DocError::UnknownScan(void.scan_id.clone()))?;
        if scan.user != void.user {
            return Err(DocError::NotOwnScan(void.scan_id.clone()));
        }
        let voids = self.voids_obj()?.clone();
        if self.doc.get(&voids, void.scan_id.as_str())?.is_some() {
            return Err(DocError::AlreadyVoided(void.scan_id.clone()));
        }
        let record = void.encode_record().map_err(|source| DocError::Record {
            id: void.scan_id.to_string(),
            source,
        })?;
        self.doc
            .put(&voids, void.scan_id.as_str(), ScalarValue::Bytes(record))?;
        self.doc
            .commit_with(CommitOptions::default().with_time((void.device_time_ms / 1000) as i64));
        Ok(())
    }

    /// The void of a scan, if it was voided.
    pub fn void(&self, id: &ScanId) -> Result<Option<Void>, DocError> {
        let voids = self.voids_obj()?;
        match self.doc.get(voids, id.as_str())? {
            None => Ok(None),
            Some((v, _)) => {
                let b =
                    bytes_value(&v).ok_or_else(|| DocError::WrongType(format!("voids.{id}")))?;
                Void::decode_record(id.clone(), &b)
                    .map(Some)
                    .map_err(|source| DocError::Record {
                        id: id.to_string(),
                        source,
                    })
            }
        }
    }

    /// Every void, in scan id order.
    pub fn voids(&self) -> Vec<Result<Void, DocError>> {
        let Some(voids) = &self.voids else {
            return Vec::new();
        };
        self.decode_section(voids, K_VOIDS, Void::decode_record)
    }

    /// Decodes every record of a section keyed by scan id (`scans` or `voids`); a value
    /// that does not decode is returned as its error so one bad entry never hides others.
    fn decode_section<T>(
        &self,
        obj: &ObjId,
        section: &str,
        decode: fn(ScanId, &[u8]) -> Result<T, RecordError>,
    ) -> Vec<Result<T, DocError>> {
        self.doc
            .map_range(obj, ..)
            .map(|item| {
                let key = item.key.to_string();
                let id = ScanId::parse(&key).map_err(|source| DocError::Record {
                    id: key.clone(),
                    source,
                })?;
                let bytes = bytes_ref(&item.value)
                    .ok_or_else(|| DocError::WrongType(format!("{section}.{key}")))?;
                decode(id, bytes).map_err(|source| DocError::Record { id: key, source })
            })
            .collect()
    }

    // ---- results (server) ----
}
