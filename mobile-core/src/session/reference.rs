//! The site's reference data on the device: stored copies and deltas, when the server
//! last confirmed them, and the in-memory copy the rules judge against.

use super::{Session, SessionError};
use crate::api;
use crate::model::{ReferenceData, ReferenceDelta};
use crate::store::StoreError;

/// What a device holds of a site's reference data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceStatus {
    /// Site id.
    pub site: String,
    /// Version held.
    pub version: u64,
    /// When the server last confirmed or updated it, ms since the Unix epoch.
    pub fetched_at_ms: Option<u64>,
}

impl ReferenceStatus {
    /// Milliseconds from the server's last word on the data to `now_ms` (`None` if it
    /// never confirmed it).
    pub fn age_ms(&self, now_ms: u64) -> Option<u64> {
        self.fetched_at_ms.map(|t| now_ms.saturating_sub(t))
    }
}

fn reference_meta(site: &str) -> String {
    format!("reference-fetched-{site}")
}

impl Session {
    /// Stores a full copy of a site's reference data.
    pub fn put_reference(&mut self, data: ReferenceData) -> Result<(), SessionError> {
        self.store.put_reference(&data)?;
        self.references.insert(data.site.clone(), data);
        Ok(())
    }

    /// Applies a reference-data delta (refused unless it starts at the stored version).
    pub fn apply_reference_delta(&mut self, delta: &ReferenceDelta) -> Result<(), SessionError> {
        let data = self.store.apply_reference_delta(delta)?;
        self.references.insert(data.site.clone(), data);
        Ok(())
    }

    /// Brings a site's reference data up to date with what the server sent, and records
    /// when (the age the app shows). Returns the version now held. A delta that does not
    /// start at the stored version is refused and changes nothing
    /// ([`SessionError::Store`]); the next sync then asks for a full copy.
    pub fn apply_reference_update(
        &mut self,
        update: &api::ReferenceUpdate,
        now_ms: u64,
    ) -> Result<u64, SessionError> {
        let site = match update {
            api::ReferenceUpdate::Current { site, .. } => site.clone(),
            api::ReferenceUpdate::Delta(d) => {
                self.apply_reference_delta(d)?;
                d.site.clone()
            }
            api::ReferenceUpdate::Full(d) => {
                self.put_reference(d.clone())?;
                d.site.clone()
            }
        };
        self.store
            .put_meta(&reference_meta(&site), now_ms.to_string().as_bytes())?;
        Ok(update.version())
    }

    /// The version of a site's reference data this device holds and when it last heard
    /// from the server about it (`None`: never downloaded).
    pub fn reference_status(
        &mut self,
        site: &str,
    ) -> Result<Option<ReferenceStatus>, SessionError> {
        let version = match self.store.reference(site) {
            Ok(Some(d)) => d.version,
            Ok(None) | Err(StoreError::InvalidId(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let fetched_at_ms = self
            .store
            .meta(&reference_meta(site))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.parse().ok());
        Ok(Some(ReferenceStatus {
            site: site.to_owned(),
            version,
            fetched_at_ms,
        }))
    }

    /// [`Session::reference_status`] of the device's own site ([`Session::site`]): `None`
    /// when no site is known (signed out) or nothing was downloaded yet.
    pub fn site_reference_status(&mut self) -> Result<Option<ReferenceStatus>, SessionError> {
        let Some(site) = self.site().map(str::to_owned) else {
            return Ok(None);
        };
        self.reference_status(&site)
    }

    /// The site this device works at, once known from a sign-in.
    pub fn site(&self) -> Option<&str> {
        self.identity.as_ref().and_then(|i| i.site.as_deref())
    }

    pub(super) fn reference(&mut self, site: &str) -> Result<&ReferenceData, SessionError> {
        if !self.references.contains_key(site) {
            // Never downloaded (or damaged): an empty copy for the site, so every rule
            // that needs data warns (unknown product) rather than silently passing.
            let data = match self.store.reference(site) {
                Ok(Some(d)) => d,
                Ok(None) | Err(StoreError::InvalidId(_)) => ReferenceData::default(),
                Err(e) => return Err(e.into()),
            };
            self.references.insert(site.to_owned(), data);
        }
        self.references
            .get(site)
            .ok_or_else(|| SessionError::UnknownTask(site.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::testing::temp_session;

    #[test]
    fn reference_status_follows_what_the_server_sent() {
        let (_dir, mut s) = temp_session();
        assert_eq!(s.reference_status("s1").unwrap(), None);
        // Never downloaded: the rules judge against an empty copy (unknown products warn).
        assert_eq!(s.reference("s1").unwrap(), &ReferenceData::default());

        let data = ReferenceData {
            site: "s1".into(),
            version: 3,
            ..ReferenceData::default()
        };
        let full = api::ReferenceUpdate::Full(data);
        assert_eq!(s.apply_reference_update(&full, 1_000).unwrap(), 3);
        let status = |s: &mut Session| s.reference_status("s1").unwrap();
        assert_eq!(
            status(&mut s),
            Some(ReferenceStatus {
                site: "s1".into(),
                version: 3,
                fetched_at_ms: Some(1_000),
            })
        );
        assert_eq!(s.reference("s1").unwrap().version, 3);

        // "Still current" only moves the time it was confirmed.
        let current = api::ReferenceUpdate::Current {
            site: "s1".into(),
            version: 3,
        };
        assert_eq!(s.apply_reference_update(&current, 2_000).unwrap(), 3);
        assert_eq!(status(&mut s).and_then(|r| r.fetched_at_ms), Some(2_000));

        // A delta from another version is refused and changes nothing.
        let stale = api::ReferenceUpdate::Delta(ReferenceDelta {
            site: "s1".into(),
            from_version: 1,
            to_version: 4,
            ..ReferenceDelta::default()
        });
        assert!(s.apply_reference_update(&stale, 3_000).is_err());
        assert_eq!(
            status(&mut s).map(|r| (r.version, r.fetched_at_ms)),
            Some((3, Some(2_000)))
        );
    }
}
