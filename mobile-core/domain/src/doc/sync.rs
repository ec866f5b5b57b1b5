//! Sync helpers both sides use: one [`SyncState`] per (document, peer), messages as bytes.

use automerge::sync::{self, SyncDoc};
use thiserror::Error;

use super::TaskDocument;

/// Errors of the sync helpers.
#[derive(Debug, Error)]
pub enum SyncError {
    /// The bytes are not a sync message (the server answers 400).
    #[error("malformed sync message: {0}")]
    MalformedMessage(String),
    /// Stored sync state bytes do not decode.
    #[error("malformed sync state: {0}")]
    MalformedState(String),
    /// Automerge could not apply the message (e.g. a corrupt change inside it).
    #[error("automerge refused the message: {0}")]
    Apply(#[from] automerge::AutomergeError),
}

/// Sync state with one peer for one document. Only the shared heads persist through
/// [`SyncState::encode`]; the rest is per session, as in Automerge.
#[derive(Debug, Clone, Default)]
pub struct SyncState(pub(crate) sync::State);

impl SyncState {
    /// A fresh state (first sync with this peer, or after losing the stored one).
    pub fn new() -> Self {
        Self(sync::State::new())
    }

    /// Bytes to store per (document, peer).
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }

    /// Reads stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        sync::State::decode(bytes)
            .map(Self)
            .map_err(|e| SyncError::MalformedState(e.to_string()))
    }

    /// The heads both sides are known to share.
    pub fn shared_heads(&self) -> &[automerge::ChangeHash] {
        &self.0.shared_heads
    }
}

/// Decodes message bytes; garbage is a typed error, never a panic.
pub(crate) fn decode_message(bytes: &[u8]) -> Result<sync::Message, SyncError> {
    sync::Message::decode(bytes).map_err(|e| SyncError::MalformedMessage(e.to_string()))
}

impl TaskDocument {
    /// The next message to send to the peer, or `None` when nothing is left to say.
    pub fn generate_sync_message(&mut self, state: &mut SyncState) -> Option<Vec<u8>> {
        self.doc
            .sync()
            .generate_sync_message(&mut state.0)
            .map(|m| m.encode())
    }

    /// Applies a message from a trusted peer (the device receiving from the server).
    /// The server must use [`super::vet_and_apply`] instead.
    pub fn receive_sync_message(
        &mut self,
        state: &mut SyncState,
        msg: &[u8],
    ) -> Result<(), SyncError> {
        let m = decode_message(msg)?;
        self.doc.sync().receive_sync_message(&mut state.0, m)?;
        self.refresh_sections();
        Ok(())
    }
}

/// Runs the sync loop between two in-memory documents until both are quiet (tests, tools).
pub fn sync_in_memory(
    a: &mut TaskDocument,
    a_state: &mut SyncState,
    b: &mut TaskDocument,
    b_state: &mut SyncState,
) -> Result<usize, SyncError> {
    let mut rounds = 0;
    loop {
        let mut quiet = true;
        if let Some(m) = a.generate_sync_message(a_state) {
            b.receive_sync_message(b_state, &m)?;
            quiet = false;
        }
        if let Some(m) = b.generate_sync_message(b_state) {
            a.receive_sync_message(a_state, &m)?;
            quiet = false;
        }
        if quiet {
            return Ok(rounds);
        }
        rounds += 1;
    }
}
