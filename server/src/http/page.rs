//! Paged lists: page sizes and opaque cursors. A cursor is the position after a page's
//! last item (base64url of its JSON), handed back unchanged as `cursor` for the next
//! page; lists continue from it by key (keyset), never by skipping rows, so a page costs
//! the same wherever it is and rows added meanwhile neither repeat nor vanish.

use axum::Json;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest page; callers asking for more get this many.
pub const MAX_LIMIT: u64 = 500;

/// Where a list whose body is a bare JSON array (kept so for existing clients) puts the
/// cursor of its next page; absent on the last page.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// A page of results; pass `next_cursor` back as `cursor` for the next page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// This page.
    pub items: Vec<T>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Page<T> {
    /// `n + 1` rows fetched for a page of `n`: the page, and a cursor made by `position`
    /// from its last item if the extra row shows more follow.
    pub fn from_rows<P: Serialize>(mut rows: Vec<T>, n: u64, position: impl Fn(&T) -> P) -> Self {
        let more = rows.len() as u64 > n;
        rows.truncate(usize::try_from(n).unwrap_or(usize::MAX));
        let next_cursor = if more {
            rows.last().map(|last| encode(&position(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// The items as a bare JSON array, the next cursor in [`NEXT_CURSOR`].
    pub fn into_array_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        if let Some(c) = self
            .next_cursor
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            response.headers_mut().insert(NEXT_CURSOR, c);
        }
        response
    }
}

/// The page size for a requested `limit`: `default` when absent, at least 1, at most
/// [`MAX_LIMIT`].
pub fn limit(requested: Option<u64>, default: u64) -> u64 {
    requested.unwrap_or(default).clamp(1, MAX_LIMIT)
}

/// A cursor that is not one this server handed out.
#[derive(Debug, thiserror::Error)]
#[error("bad cursor {0:?}: pass back a next_cursor unchanged")]
pub struct BadCursor(pub String);

/// The opaque cursor for a position.
pub fn encode<P: Serialize>(position: &P) -> String {
    let json = serde_json::to_vec(position).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The position a cursor made by [`encode`] holds.
pub fn decode<P: DeserializeOwned>(cursor: &str) -> Result<P, BadCursor> {
    let bad = || BadCursor(cursor.chars().take(100).collect());
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    serde_json::from_slice(&json).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode(&("a", 3));
        assert_eq!(decode::<(String, u32)>(&c).expect("ours"), ("a".into(), 3));
        assert!(decode::<(String, u32)>("not a cursor!").is_err());
        assert!(decode::<(String, u32)>(&encode(&"other shape")).is_err());
    }

    #[test]
    fn pages_know_whether_more_follow() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, [1, 2]);
        assert_eq!(
            decode::<i32>(page.next_cursor.as_deref().expect("more")).ok(),
            Some(2)
        );
        assert!(Page::from_rows(vec![1, 2], 2, |n| *n).next_cursor.is_none());
        assert_eq!(limit(None, 50), 50);
        assert_eq!(limit(Some(0), 50), 1);
        assert_eq!(limit(Some(u64::MAX), 50), MAX_LIMIT);
    }
}
