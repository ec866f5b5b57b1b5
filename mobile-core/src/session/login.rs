//! Sign-in: tokens and identity from the server's answer, and adopting the device's
//! registered Automerge actor (renaming pending scans into its id space).

use automerge::ActorId;

use super::identity::actor_from_hex;
use super::{HTTP_TIMEOUT, Identity, META_INSTALL, Session, SessionError, now_ms};
use crate::api::SignedIn;
use crate::model::ScanId;
use crate::sync::{Client, SyncError};

/// Access-token expiry from a sign-in answer's `expires_in` (seconds).
pub(super) fn expiry_ms(now_ms: u64, expires_in: i64) -> u64 {
    now_ms.saturating_add(u64::try_from(expires_in).unwrap_or(0).saturating_mul(1000))
}

impl Session {
    /// Signs in at `server_url` as `username` on the registered device `device_id`:
    /// stores the tokens and the identity (user id and device id go into every scan),
    /// and adopts the device's registered Automerge actor (see the module docs).
    pub fn login(
        &mut self,
        server_url: &str,
        username: &str,
        password: &str,
        device_id: &str,
    ) -> Result<Identity, SessionError> {
        let client = Client::new(server_url, HTTP_TIMEOUT);
        let tokens = client
            .login(username, password, device_id)
            .map_err(|e| match e {
                // At sign-in a 401 means wrong credentials, not an expired session.
                SyncError::Unauthorized(_) => SyncError::Rejected {
                    status: 401,
                    code: "invalid_credentials".into(),
                    message: "wrong user name or password".into(),
                },
                other => other,
            })?;
        self.apply_login(server_url, tokens, now_ms())
    }

    /// Takes the answer of a sign-in made elsewhere (e.g. by the app's own HTTP stack, or
    /// a test): adopts the registered actor, then stores identity and tokens durably.
    pub fn apply_login(
        &mut self,
        server_url: &str,
        tokens: SignedIn,
        now_ms: u64,
    ) -> Result<Identity, SessionError> {
        let device = tokens.device.clone().ok_or_else(|| {
            SyncError::Protocol("the sign-in answer names no device (not a device login)".into())
        })?;
        let registered = device.actor_id.to_ascii_lowercase();
        let actor = actor_from_hex(&registered).ok_or_else(|| {
            SyncError::Protocol(format!("device actor {registered:?} is not hex"))
        })?;
        self.adopt_actor(&registered, actor)?;
        let identity = Identity {
            user: tokens.user.id.clone(),
            device: device.id.clone(),
            site: Some(device.site_id.clone()),
            access_token: Some(tokens.access_token.clone()),
            refresh_token: Some(tokens.refresh_token.clone()),
            access_expires_ms: Some(expiry_ms(now_ms, tokens.expires_in)),
            server_url: Some(server_url.trim_end_matches('/').to_owned()),
        };
        self.set_identity(identity.clone())?;
        Ok(identity)
    }

    /// Switches every document (and later ones) to `actor` and persists it, unless the
    /// store holds applied writes by the current actor that the server has not seen.
    fn adopt_actor(&mut self, hex: &str, actor: ActorId) -> Result<(), SessionError> {
        if self.install.actor == hex {
            return Ok(());
        }
        let mut writes = 0;
        for id in self.store.doc_ids() {
            writes += self.store.unsynced_applied_writes(&id)?;
        }
        if writes > 0 {
            return Err(SessionError::ActorConflict {
                current: self.install.actor.clone(),
                registered: hex.to_owned(),
                writes,
            });
        }
        // Persist first: if this write fails nothing changed; once it is durable every
        // open uses the registered actor, and the in-memory switch below cannot fail.
        let mut install = self.install.clone();
        install.id_prefix = Some(self.install.first_actor().to_owned());
        install.actor = hex.to_owned();
        let json = serde_json::to_vec(&install)
            .map_err(|e| SessionError::Meta(META_INSTALL, e.to_string()))?;
        self.store.put_meta(META_INSTALL, &json)?;
        self.install = install;
        self.store.set_actor(actor);
        self.rename_pending_scans()?;
        Ok(())
    }

    /// Gives pending scans recorded under an earlier actor (before the first sign-in)
    /// the current actor's id prefix, so the server takes them; they are then written
    /// into the documents under the new ids right away. Deterministic, so it is simply
    /// redone at the next open if a crash comes first.
    pub(super) fn rename_pending_scans(&mut self) -> Result<(), SessionError> {
        let actor = format!("{}.", self.install.actor);
        for doc in self.store.doc_ids() {
            let renamed = self.store.rename_pending(&doc, |id| {
                let s = id.as_str();
                if s.starts_with(&actor) {
                    return None;
                }
                let (_, rest) = s.split_once('.')?;
                ScanId::parse(&format!("{actor}{rest}")).ok()
            })?;
            if renamed > 0 {
                self.store.apply_pending(&doc)?;
                self.tasks.remove(&doc);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_expiry_never_lies_in_the_past_or_overflows() {
        assert_eq!(expiry_ms(1_000, 60), 61_000);
        assert_eq!(expiry_ms(1_000, 0), 1_000);
        assert_eq!(expiry_ms(1_000, -60), 1_000);
        assert_eq!(expiry_ms(u64::MAX - 10, 60), u64::MAX);
        assert_eq!(expiry_ms(0, i64::MAX), u64::MAX);
    }
}
