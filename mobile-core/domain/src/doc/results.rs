//! The server-owned `results` section: the server's outcome per scan (verification,
//! projection, exceptions and its own verdict), written field by field.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};

use super::{DocError, K_RESULTS, TaskDocument, get_obj, str_at};
use crate::model::ScanId;

/// The server-owned outcome for one scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Verification outcome code (`verified`, `not_verified`, `pending`, …).
    pub verification: Option<String>,
    /// Projection outcome code (`projected`, `rejected`, …).
    pub projection: Option<String>,
    /// Exception codes raised for this scan.
    pub exceptions: Vec<String>,
    /// The server's verdict on the scan by the scan rules on its current reference data
    /// (`accept`, `warn`, `reject`): the authoritative one, which the scanner shows where
    /// it differs from its own.
    pub verdict: Option<String>,
    /// The rules' primary reason code for that verdict (`ok`, `recalled_lot`, …).
    pub reason: Option<String>,
}

impl TaskDocument {
    /// Writes the outcome for one scan (server only), without committing, so a projection
    /// pass can write many results in one change; call [`TaskDocument::commit`] after.
    pub fn put_result(&mut self, id: &ScanId, r: &ScanResult) -> Result<(), DocError> {
        self.update_result(id, |_| r.clone()).map(|_| ())
    }

    /// Replaces the outcome for one scan with `f(current)` (the default when none is
    /// recorded), writing only the fields that differ: every put grows the history.
    /// Reads the current outcome once, so deciding and writing cost one lookup (the
    /// server rewrites thousands of results per pass). Does not commit. Returns whether
    /// anything was written.
    pub fn update_result(
        &mut self,
        id: &ScanId,
        f: impl FnOnce(&ScanResult) -> ScanResult,
    ) -> Result<bool, DocError> {
        let results = self.section(K_RESULTS)?;
        let entry = self.result_entry(&results, id)?;
        let current = match &entry {
            Some(m) => self.read_result(m, id)?,
            None => ScanResult::default(),
        };
        let wanted = f(&current);
        if wanted == current {
            return Ok(false);
        }
        let m = match entry {
            Some(m) => m,
            None => self.doc.put_object(&results, id.as_str(), ObjType::Map)?,
        };
        for (key, cur, val) in [
            ("verification", &current.verification, &wanted.verification),
            ("projection", &current.projection, &wanted.projection),
            ("verdict", &current.verdict, &wanted.verdict),
            ("reason", &current.reason, &wanted.reason),
        ] {
            if cur != val {
                match val {
                    Some(v) => self.doc.put(&m, key, v.as_str())?,
                    None => self.doc.delete(&m, key)?,
                }
            }
        }
        if current.exceptions != wanted.exceptions {
            let list = self.doc.put_object(&m, "exceptions", ObjType::List)?;
            for (i, e) in wanted.exceptions.iter().enumerate() {
                self.doc.insert(&list, i, e.as_str())?;
            }
        }
        Ok(true)
    }

    /// The outcome recorded for a scan.
    pub fn result(&self, id: &ScanId) -> Result<Option<ScanResult>, DocError> {
        let results = self.section(K_RESULTS)?;
        match self.result_entry(&results, id)? {
            None => Ok(None),
            Some(m) => self.read_result(&m, id).map(Some),
        }
    }

    /// The map holding a scan's outcome, if there is one.
    fn result_entry(&self, results: &ObjId, id: &ScanId) -> Result<Option<ObjId>, DocError> {
        match self.doc.get(results, id.as_str())? {
            None => Ok(None),
            Some((Value::Object(ObjType::Map), m)) => Ok(Some(m)),
            Some(_) => Err(DocError::WrongType(format!("results.{id}"))),
        }
    }

    /// Decodes the outcome map of scan `id`.
    fn read_result(&self, m: &ObjId, id: &ScanId) -> Result<ScanResult, DocError> {
        let path = format!("results.{id}");
        let mut exceptions = Vec::new();
        if let Some(l) = get_obj(&self.doc, m, "exceptions") {
            for i in 0..self.doc.length(&l) {
                match self.doc.get(&l, i)? {
                    Some((Value::Scalar(s), _)) => match s.as_ref() {
                        ScalarValue::Str(v) => exceptions.push(v.to_string()),
                        _ => return Err(DocError::WrongType(format!("{path}.exceptions[{i}]"))),
                    },
                    _ => return Err(DocError::WrongType(format!("{path}.exceptions[{i}]"))),
                }
            }
        }
        Ok(ScanResult {
            verification: str_at(&self.doc, m, "verification", &path)?,
            projection: str_at(&self.doc, m, "projection", &path)?,
            exceptions,
            verdict: str_at(&self.doc, m, "verdict", &path)?,
            reason: str_at(&self.doc, m, "reason", &path)?,
        })
    }
}
