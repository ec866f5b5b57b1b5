//! The batch sync wire format, shared by the device's sync client and the server, so
//! that many documents sync in one HTTP round trip. Pure encoding; no I/O.
//!
//! A batch request body (`POST /api/v1/sync`, `application/vnd.swt.sync-batch`) is
//! `"SWTB"`, version byte `1`, a big-endian `u16` item count, then per item: `u16` id
//! length, the document id (UTF-8), `u32` message length, the Automerge sync message.
//! The response has the same header; per item: `u16` id length, id, a status byte
//! ([`ItemStatus`]), `u32` payload length, payload (a sync message for `Message`, a JSON
//! error object `{"code", "reason"?, "message"}` for the error statuses, empty for
//! `InSync`). The full description is in `docs/sync-protocol.md`.

/// Magic bytes opening every batch body.
pub const MAGIC: &[u8; 4] = b"SWTB";
/// The only version so far.
pub const VERSION: u8 = 1;
/// Most items in one batch.
pub const MAX_ITEMS: usize = 512;
/// The content type of batch bodies.
pub const CONTENT_TYPE: &str = "application/vnd.swt.sync-batch";

/// What the server says about one document of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ItemStatus {
    /// The payload is the server's next sync message.
    Message = 0,
    /// Nothing more to send: the document is in sync.
    InSync = 1,
    /// The message was refused (payload: JSON with `reason`); nothing of it applied.
    /// Do not offer this document again until a person has looked.
    Refused = 2,
    /// The message was not a valid sync message (payload: JSON).
    Malformed = 3,
    /// No such document for this caller (payload: JSON).
    NotFound = 4,
    /// The server failed; retry later (payload: JSON).
    Error = 5,
}

impl ItemStatus {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Message,
            1 => Self::InSync,
            2 => Self::Refused,
            3 => Self::Malformed,
            4 => Self::NotFound,
            5 => Self::Error,
            _ => return None,
        })
    }
}

/// A batch body that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed sync batch at byte {offset}: {reason}")]
pub struct WireError {
    /// Where reading stopped.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// One item of a request: a document and the device's message for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestItem {
    /// Document id.
    pub doc_id: String,
    /// Automerge sync message.
    pub message: Vec<u8>,
}

/// One item of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseItem {
    /// Document id.
    pub doc_id: String,
    /// Outcome.
    pub status: ItemStatus,
    /// Sync message or JSON error, per `status`.
    pub payload: Vec<u8>,
}

fn header(out: &mut Vec<u8>, count: usize) -> Result<(), WireError> {
    let count = u16::try_from(count)
        .ok()
        .filter(|c| usize::from(*c) <= MAX_ITEMS)
        .ok_or(WireError {
            offset: 0,
            reason: "too many items",
        })?;
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&count.to_be_bytes());
    Ok(())
}

fn put_id(out: &mut Vec<u8>, id: &str) -> Result<(), WireError> {
    let len = u16::try_from(id.len()).map_err(|_| WireError {
        offset: out.len(),
        reason: "document id too long",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    Ok(())
}

fn put_payload(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), WireError> {
    let len = u32::try_from(payload.len()).map_err(|_| WireError {
        offset: out.len(),
        reason: "payload too long",
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Encodes a request body.
pub fn encode_request(items: &[RequestItem]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(
        7 + items
            .iter()
            .map(|i| i.message.len() + 6 + i.doc_id.len())
            .sum::<usize>(),
    );
    header(&mut out, items.len())?;
    for item in items {
        put_id(&mut out, &item.doc_id)?;
        put_payload(&mut out, &item.message)?;
    }
    Ok(out)
}

/// Encodes a response body.
pub fn encode_response(items: &[ResponseItem]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    header(&mut out, items.len())?;
    for item in items {
        put_id(&mut out, &item.doc_id)?;
        out.push(item.status as u8);
        put_payload(&mut out, &item.payload)?;
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> WireError {
        WireError {
            offset: self.at,
            reason,
        }
    }

    fn take(&mut self, n: usize, reason: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).ok_or_else(|| self.err(reason))?;
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| self.err(reason))?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1, "truncated")?[0])
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2, "truncated")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4, "truncated")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn header(&mut self) -> Result<usize, WireError> {
        if self.take(4, "truncated")? != MAGIC {
            return Err(self.err("not a sync batch (bad magic)"));
        }
        if self.u8()? != VERSION {
            return Err(self.err("unsupported batch version"));
        }
        let count = usize::from(self.u16()?);
        if count > MAX_ITEMS {
            return Err(self.err("too many items"));
        }
        Ok(count)
    }

    fn id(&mut self) -> Result<String, WireError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len, "truncated document id")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err("document id is not UTF-8"))
    }

    fn payload(&mut self) -> Result<Vec<u8>, WireError> {
        let len = usize::try_from(self.u32()?).map_err(|_| self.err("payload too long"))?;
        Ok(self.take(len, "truncated payload")?.to_vec())
    }

    fn end(&self) -> Result<(), WireError> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// Decodes a request body; anything off is an error, never a panic.
pub fn decode_request(bytes: &[u8]) -> Result<Vec<RequestItem>, WireError> {
    let mut r = Reader { bytes, at: 0 };
    let count = r.header()?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let doc_id = r.id()?;
        let message = r.payload()?;
        items.push(RequestItem { doc_id, message });
    }
    r.end()?;
    Ok(items)
}

/// Decodes a response body.
pub fn decode_response(bytes: &[u8]) -> Result<Vec<ResponseItem>, WireError> {
    let mut r = Reader { bytes, at: 0 };
    let count = r.header()?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let doc_id = r.id()?;
        let status = ItemStatus::from_byte(r.u8()?).ok_or_else(|| r.err("unknown item status"))?;
        let payload = r.payload()?;
        items.push(ResponseItem {
            doc_id,
            status,
            payload,
        });
    }
    r.end()?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_round_trip() {
        let items = vec![
            RequestItem {
                doc_id: "0193-a".into(),
                message: vec![1, 2, 3],
            },
            RequestItem {
                doc_id: "b".into(),
                message: vec![],
            },
        ];
        let bytes = encode_request(&items).expect("encode");
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(decode_request(&bytes).expect("decode"), items);
    }

    #[test]
    fn response_round_trip() {
        let items = vec![ResponseItem {
            doc_id: "d".into(),
            status: ItemStatus::Refused,
            payload: br#"{"code":"sync_refused"}"#.to_vec(),
        }];
        let bytes = encode_response(&items).expect("encode");
        assert_eq!(decode_response(&bytes).expect("decode"), items);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert_eq!(decode_request(b"").unwrap_err().reason, "truncated");
        assert_eq!(
            decode_request(b"XXXX\x01\x00\x00").unwrap_err().reason,
            "not a sync batch (bad magic)"
        );
        assert_eq!(
            decode_request(b"SWTB\x02\x00\x00").unwrap_err().reason,
            "unsupported batch version"
        );
        // Claims one item, has none.
        assert_eq!(
            decode_request(b"SWTB\x01\x00\x01").unwrap_err().reason,
            "truncated"
        );
        // A length far beyond the body.
        let mut b = b"SWTB\x01\x00\x01\x00\x01a".to_vec();
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_request(&b).unwrap_err().reason, "truncated payload");
        let mut ok = encode_request(&[]).expect("encode");
        ok.push(0);
        assert_eq!(decode_request(&ok).unwrap_err().reason, "trailing bytes");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(&bytes);
            let _ = decode_response(&bytes);
        }
    }
}
