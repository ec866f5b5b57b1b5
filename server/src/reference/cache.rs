//! The reference data this process judges scans against at projection: one copy per
//! site, kept at the organisation's current version by applying deltas, so a recall
//! entered a second ago applies to the next projected scan without rebuilding 200,000
//! blocked serials each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::DatabaseConnection;
use swt_domain::api::ReferenceUpdate;
use swt_domain::model::ReferenceData;

use super::{ReferenceError, current_version, update};

/// Per-process copies of sites' reference data, by (organisation, site).
#[derive(Default)]
pub struct ReferenceCache {
    sites: Mutex<HashMap<(String, String), Arc<ReferenceData>>>,
}

impl ReferenceCache {
    /// The site's reference data at the organisation's current version.
    pub async fn get(
        &self,
        db: &DatabaseConnection,
        org: &str,
        site: &str,
    ) -> Result<Arc<ReferenceData>, ReferenceError> {
        let key = (org.to_owned(), site.to_owned());
        let held = self.lock().get(&key).cloned();
        let current = current_version(db, org).await?;
        if let Some(h) = &held
            && h.version == current
            && current > 0
        {
            return Ok(Arc::clone(h));
        }
        let fresh = match update(db, org, site, held.as_ref().map(|h| h.version)).await? {
            ReferenceUpdate::Current { .. } => match held {
                Some(h) => h,
                None => Arc::new(super::snapshot(db, org, site).await?),
            },
            ReferenceUpdate::Full(d) => Arc::new(d),
            ReferenceUpdate::Delta(d) => {
                let mut data = held.map(|h| (*h).clone()).unwrap_or_default();
                match data.apply_delta(&d) {
                    Ok(()) => Arc::new(data),
                    // Cannot happen with a delta from our own copy's version; a full copy
                    // is always right.
                    Err(_) => Arc::new(super::snapshot(db, org, site).await?),
                }
            }
        };
        let mut sites = self.lock();
        // Keep the newer of two concurrent refreshes.
        match sites.get(&key) {
            Some(now) if now.version > fresh.version => Ok(Arc::clone(now)),
            _ => {
                sites.insert(key, Arc::clone(&fresh));
                Ok(fresh)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<ReferenceData>>> {
        // A poisoned lock only means another thread panicked while holding a map of
        // immutable copies: the map is still sound.
        self.sites.lock().unwrap_or_else(|e| e.into_inner())
    }
}
