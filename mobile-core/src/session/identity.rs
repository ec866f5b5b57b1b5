//! Who scans and under which ids: the logged-in user and tokens (persisted), the install
//! file (Automerge actor, install nonce) and the scan-id counter reserved in blocks.

use automerge::ActorId;
use serde::{Deserialize, Serialize};

use super::{META_IDENTITY, META_INSTALL, Session, SessionError};
use crate::model::ScanId;

/// Scan ids are reserved in blocks persisted ahead of use: one durable write per block,
/// and a restart skips the rest of the block (ids only need to be unique, not dense).
const ID_BLOCK: u64 = 4096;

/// Who scans: the logged-in user on this device, and the tokens for sync. Also the
/// Kotlin record `Identity` (the shape is the same on both sides).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, uniffi::Record)]
pub struct Identity {
    /// User id, written into every scan (1–64 bytes).
    pub user: String,
    /// Registered device id, written into every scan (1–64 bytes).
    pub device: String,
    /// Site the device is bound to, if known.
    pub site: Option<String>,
    /// Access token (JWT); kept after it expires so the user can be shown as "logged
    /// in, offline".
    pub access_token: Option<String>,
    /// Refresh token.
    pub refresh_token: Option<String>,
    /// Access token expiry, ms since the Unix epoch.
    pub access_expires_ms: Option<u64>,
    /// The server signed in to ([`Session::login`]); [`Session::sync_now`] syncs with it.
    #[serde(default)]
    #[uniffi(default = None)]
    pub server_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Install {
    /// Automerge actor of this install, hex: random until the first sign-in, then the
    /// device's registered actor.
    pub(super) actor: String,
    /// Scan-id counters below this are reserved (possibly used).
    pub(super) reserved_until: u64,
    /// Scan-id prefix when it differs from `actor` (the install's first, random actor,
    /// kept after adopting the registered actor so ids stay unique per install).
    #[serde(default)]
    pub(super) id_prefix: Option<String>,
}

impl Install {
    /// The install's original random actor: the source of its nonce.
    pub(super) fn first_actor(&self) -> &str {
        self.id_prefix.as_deref().unwrap_or(&self.actor)
    }

    /// `<actor>.<nonce>`: what every scan id of this install starts with.
    pub(super) fn id_prefix(&self) -> String {
        let first = self.first_actor();
        let nonce = first.get(..INSTALL_NONCE_LEN).unwrap_or(first);
        format!("{}.{nonce}", self.actor)
    }
}

/// Hex digits of the install nonce in scan ids: 32 bits tell the installs of one device
/// apart, and the id stays within 64 bytes (32 + 1 + 8 + 1 + at most 13).
const INSTALL_NONCE_LEN: usize = 8;

pub(super) fn actor_from_hex(hex: &str) -> Option<ActorId> {
    ActorId::try_from(hex).ok()
}

impl Session {
    fn reserve_ids(&mut self) -> Result<(), SessionError> {
        self.install.reserved_until = self.next_counter + ID_BLOCK;
        let json = serde_json::to_vec(&self.install)
            .map_err(|e| SessionError::Meta(META_INSTALL, e.to_string()))?;
        self.store.put_meta(META_INSTALL, &json)?;
        Ok(())
    }

    pub(super) fn next_scan_id(&mut self) -> Result<ScanId, SessionError> {
        if self.next_counter >= self.install.reserved_until {
            self.reserve_ids()?;
        }
        let id = ScanId::from_device_counter(&self.install.id_prefix(), self.next_counter)?;
        self.next_counter += 1;
        Ok(id)
    }

    /// This install's Automerge actor, hex: random before the first sign-in, the
    /// device's registered actor after it.
    pub fn actor_hex(&self) -> &str {
        &self.install.actor
    }

    /// The prefix of this install's scan ids: its actor (hex), a dot and the install
    /// nonce.
    pub fn scan_id_prefix(&self) -> String {
        self.install.id_prefix()
    }

    /// Sets the logged-in user, device and tokens, durably.
    pub fn set_identity(&mut self, identity: Identity) -> Result<(), SessionError> {
        for (field, v) in [("user", &identity.user), ("device", &identity.device)] {
            if v.is_empty() || v.len() > crate::model::MAX_NAME_LEN {
                return Err(SessionError::InvalidInput(format!(
                    "{field} must be 1-64 bytes"
                )));
            }
        }
        self.save_identity(Some(identity))
    }

    /// Replaces only the tokens (after a refresh or a new login of the same user).
    pub fn set_tokens(
        &mut self,
        access_token: Option<String>,
        refresh_token: Option<String>,
        access_expires_ms: Option<u64>,
    ) -> Result<(), SessionError> {
        let mut id = self.identity.clone().ok_or(SessionError::NotLoggedIn)?;
        id.access_token = access_token;
        id.refresh_token = refresh_token;
        id.access_expires_ms = access_expires_ms;
        self.save_identity(Some(id))
    }

    /// Forgets the user and tokens. Recorded scans stay and sync at the next login of
    /// the same user.
    pub fn logout(&mut self) -> Result<(), SessionError> {
        self.save_identity(None)
    }

    fn save_identity(&mut self, identity: Option<Identity>) -> Result<(), SessionError> {
        let json = serde_json::to_vec(&identity)
            .map_err(|e| SessionError::Meta(META_IDENTITY, e.to_string()))?;
        self.store.put_meta(META_IDENTITY, &json)?;
        self.identity = identity;
        Ok(())
    }

    /// The logged-in identity.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testing::open;

    fn identity() -> Identity {
        Identity {
            user: "u1".into(),
            device: "d1".into(),
            ..Identity::default()
        }
    }

    #[test]
    fn scan_ids_keep_the_install_nonce_after_adopting_an_actor() {
        let (first, registered) = ("ab".repeat(16), "cd".repeat(16));
        let fresh = Install {
            actor: first.clone(),
            reserved_until: 0,
            id_prefix: None,
        };
        assert_eq!(fresh.id_prefix(), format!("{first}.abababab"));
        let adopted = Install {
            actor: registered.clone(),
            reserved_until: 0,
            id_prefix: Some(first),
        };
        assert_eq!(adopted.id_prefix(), format!("{registered}.abababab"));
    }

    #[test]
    fn identity_is_checked_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        for bad in [String::new(), "x".repeat(crate::model::MAX_NAME_LEN + 1)] {
            let user = Identity {
                user: bad.clone(),
                ..identity()
            };
            let device = Identity {
                device: bad,
                ..identity()
            };
            assert!(matches!(
                s.set_identity(user),
                Err(SessionError::InvalidInput(_))
            ));
            assert!(matches!(
                s.set_identity(device),
                Err(SessionError::InvalidInput(_))
            ));
        }
        assert!(matches!(
            s.set_tokens(Some("a".into()), None, None),
            Err(SessionError::NotLoggedIn)
        ));
        s.set_identity(identity()).unwrap();
        s.set_tokens(Some("a".into()), Some("r".into()), Some(5))
            .unwrap();
        drop(s);

        let mut s = open(dir.path());
        let id = s.identity().unwrap();
        assert_eq!(id.user, "u1");
        assert_eq!(id.access_token.as_deref(), Some("a"));
        assert_eq!(id.refresh_token.as_deref(), Some("r"));
        assert_eq!(id.access_expires_ms, Some(5));
        s.logout().unwrap();
        drop(s);
        assert_eq!(open(dir.path()).identity(), None);
    }

    #[test]
    fn a_reopened_install_starts_past_its_reserved_id_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let prefix = s.scan_id_prefix();
        assert!(prefix.starts_with(&format!("{}.", s.actor_hex())));
        let first = s.next_scan_id().unwrap();
        let second = s.next_scan_id().unwrap();
        assert_eq!(first, ScanId::from_device_counter(&prefix, 0).unwrap());
        assert_eq!(second, ScanId::from_device_counter(&prefix, 1).unwrap());
        drop(s);

        // Same install (same prefix); the rest of the block may have been used.
        let mut s = open(dir.path());
        assert_eq!(s.scan_id_prefix(), prefix);
        let next = s.next_scan_id().unwrap();
        assert_eq!(
            next,
            ScanId::from_device_counter(&prefix, ID_BLOCK).unwrap()
        );
    }
}
