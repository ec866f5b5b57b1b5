//! Token signing keys: Ed25519, identified by `kid`, kept in the database so that every
//! server instance signs and verifies with the same set, and rotated without logging
//! anyone out (a retired key keeps verifying until its tokens have expired).

use std::collections::HashMap;

use chrono::Utc;
use jsonwebtoken::{DecodingKey, EncodingKey};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use tokio::sync::RwLock;

use crate::db::entity::signing_key;

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 §7): the DER is this plus the seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// How long a retired key still verifies: longer than any access token lives.
const RETIRED_KEY_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The database failed.
    #[error("signing keys: {0}")]
    Db(#[from] DbErr),
    /// The operating system's random source failed.
    #[error("signing keys: no randomness: {0}")]
    Random(String),
}

struct Ring {
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
}

/// The keys in use, reloaded from the database when a token names an unknown `kid`.
pub struct KeyRing {
    ring: RwLock<Ring>,
}

/// Makes a new Ed25519 key and stores it as the signing key; older keys retire.
pub async fn rotate(db: &DatabaseConnection) -> Result<String, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = signing.verifying_key().to_bytes();
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let now = Utc::now();
    let kid = format!(
        "{}-{}",
        now.format("%Y%m%d"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    signing_key::Entity::update_many()
        .col_expr(
            signing_key::Column::RetiredAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(kid.clone()),
        private_der: Set(der),
        public_raw: Set(public.to_vec()),
        created_at: Set(now),
        retired_at: Set(None),
    })
    .exec(db)
    .await?;
    Ok(kid)
}

impl Default for KeyRing {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyRing {
    /// An empty ring; keys are read from the database on first use, so a server can
    /// start (and report itself not ready) before its schema is migrated.
    pub fn new() -> Self {
        Self {
            ring: RwLock::new(Ring {
                signing: None,
                verifying: HashMap::new(),
            }),
        }
    }

    /// The current signing key and its id, creating the first key on a new database.
    pub async fn signing(
        &self,
        db: &DatabaseConnection,
    ) -> Result<(String, EncodingKey), KeyError> {
        if let Some(key) = self.ring.read().await.signing.clone() {
            return Ok(key);
        }
        let mut ring = self.ring.write().await;
        if let Some(key) = ring.signing.clone() {
            return Ok(key);
        }
        let mut fresh = read(db).await?;
        if fresh.signing.is_none() {
            rotate(db).await?;
            fresh = read(db).await?;
        }
        *ring = fresh;
        ring.signing
            .clone()
            .ok_or_else(|| KeyError::Random("no signing key after creating one".into()))
    }

    /// The verification key for `kid`, reloading from the database once if it is new here
    /// (another instance may have rotated).
    pub async fn verifying(&self, db: &DatabaseConnection, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.ring.read().await.verifying.get(kid) {
            return Some(key.clone());
        }
        let fresh = read(db).await.ok()?;
        let mut ring = self.ring.write().await;
        *ring = fresh;
        ring.verifying.get(kid).cloned()
    }

    /// Rereads the keys (after a rotation by this process).
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<(), KeyError> {
        let fresh = read(db).await?;
        *self.ring.write().await = fresh;
        Ok(())
    }
}

async fn read(db: &DatabaseConnection) -> Result<Ring, KeyError> {
    let keys = signing_key::Entity::find()
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(db)
        .await?;
    let now = Utc::now();
    let signing = keys
        .iter()
        .find(|k| k.retired_at.is_none())
        .map(|k| (k.kid.clone(), EncodingKey::from_ed_der(&k.private_der)));
    let verifying = keys
        .iter()
        .filter(|k| k.retired_at.is_none_or(|at| at + RETIRED_KEY_GRACE > now))
        .map(|k| (k.kid.clone(), DecodingKey::from_ed_der(&k.public_raw)))
        .collect();
    Ok(Ring { signing, verifying })
}
