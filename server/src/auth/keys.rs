//! Token signing keys: Ed25519, identified by `kid`, kept in the database so that every
//! server instance signs and verifies with the same set, and rotated without logging
//! anyone out (a retired key keeps verifying until its tokens have expired).
//!
//! At rest the private keys are encrypted with a key-encryption key ([`Kek`]) that is
//! not in the database (ChaCha20-Poly1305, the key id as associated data): a copy of
//! the database alone cannot mint tokens. Keys stored before a KEK was configured are
//! encrypted in place at start-up ([`KeyRing::check`]); a wrong KEK stops the server.

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
    /// A stored key does not decrypt with the configured key-encryption key.
    #[error(
        "signing key {kid} does not decrypt with the configured key-encryption key (auth.key_encryption_key_file / SWT_KEY_ENCRYPTION_KEY): wrong key, or the key was changed"
    )]
    WrongKek {
        /// The key id.
        kid: String,
    },
    /// A stored key is encrypted but no key-encryption key is configured.
    #[error(
        "signing key {kid} is encrypted but no key-encryption key is configured (auth.key_encryption_key_file / SWT_KEY_ENCRYPTION_KEY)"
    )]
    NoKek {
        /// The key id.
        kid: String,
    },
    /// The key-encryption key could not be read or made.
    #[error("key-encryption key {path}: {why}")]
    KekFile {
        /// Where it was looked for.
        path: String,
        /// What was wrong.
        why: String,
    },
}

/// What an encrypted private key starts with (a plain PKCS#8 DER starts with 0x30).
const SEALED_MAGIC: &[u8; 5] = b"SWTK1";

/// The key that encrypts signing keys at rest: 32 bytes from the environment
/// (`SWT_KEY_ENCRYPTION_KEY`, 64 hex digits) or a file.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// The environment variable that carries a key-encryption key (64 hex digits).
pub const KEK_ENV: &str = "SWT_KEY_ENCRYPTION_KEY";

impl Kek {
    /// Reads 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// A fresh random key.
    pub fn random() -> Result<Self, KeyError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self(k))
    }

    /// The key in the file, created (random, owner-only permissions) if it is missing.
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let err = |why: String| KeyError::KekFile {
            path: path.display().to_string(),
            why,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text).ok_or_else(|| err("not 64 hex digits".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kek = Self::random()?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
                std::io::Write::write_all(&mut f, format!("{}\n", hex::encode(kek.0)).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(e.to_string()))?;
                tracing::info!(path = %path.display(), "created a key-encryption key for the signing keys");
                Ok(kek)
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// The configured key: the environment variable, else the configured file, else
    /// `<database file>.kek` beside an SQLite database; `None` (keys unencrypted, with a
    /// warning at start-up) for PostgreSQL or an in-memory database without either.
    pub fn resolve(config: &crate::config::Config) -> Result<Option<Self>, KeyError> {
        if let Ok(text) = std::env::var(KEK_ENV) {
            return Self::from_hex(&text)
                .map(Some)
                .ok_or_else(|| KeyError::KekFile {
                    path: KEK_ENV.to_owned(),
                    why: "not 64 hex digits".into(),
                });
        }
        if let Some(path) = &config.auth.key_encryption_key_file {
            return Self::from_file(path).map(Some);
        }
        match crate::db::sqlite_file(&config.database_url) {
            Some(db_file) => {
                let mut path = db_file.into_os_string();
                path.push(".kek");
                Self::from_file(std::path::Path::new(&path)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn aead(&self) -> ring::aead::LessSafeKey {
        // Only fails for a key of the wrong length, and ours is 32 bytes by type.
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &self.0)
            .unwrap_or_else(|_| unreachable!("a 32-byte ChaCha20-Poly1305 key"));
        ring::aead::LessSafeKey::new(unbound)
    }

    /// Encrypts a private key for storage under `kid`.
    fn seal(&self, kid: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; ring::aead::NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut body = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(kid.as_bytes()),
                &mut body,
            )
            .map_err(|_| KeyError::Random("sealing failed".into()))?;
        let mut out = SEALED_MAGIC.to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts what [`Kek::seal`] stored under `kid`.
    fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, KeyError> {
        let wrong = || KeyError::WrongKek {
            kid: kid.to_owned(),
        };
        let rest = stored
            .strip_prefix(SEALED_MAGIC.as_slice())
            .ok_or_else(wrong)?;
        if rest.len() < ring::aead::NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, sealed) = rest.split_at(ring::aead::NONCE_LEN);
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut body = sealed.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, ring::aead::Aad::from(kid.as_bytes()), &mut body)
            .map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(SEALED_MAGIC)
}

/// The private key of a stored row, decrypted if it is sealed.
fn private_der(kek: Option<&Kek>, kid: &str, stored: &[u8]) -> Result<Vec<u8>, KeyError> {
    match (is_sealed(stored), kek) {
        (false, _) => Ok(stored.to_vec()),
        (true, Some(k)) => k.open(kid, stored),
        (true, None) => Err(KeyError::NoKek {
            kid: kid.to_owned(),
        }),
    }
}

struct Ring {
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, DecodingKey>,
}

/// The keys in use, reloaded from the database when a token names an unknown `kid`.
pub struct KeyRing {
    ring: RwLock<Ring>,
    kek: Option<Kek>,
}

/// Makes a new Ed25519 key and stores it (sealed with `kek` when there is one) as the
/// signing key; older keys retire.
pub async fn rotate(db: &DatabaseConnection, kek: Option<&Kek>) -> Result<String, KeyError> {
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
    let stored = match kek {
        Some(k) => k.seal(&kid, &der)?,
        None => der,
    };
    signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(kid.clone()),
        private_der: Set(stored),
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
        Self::with_kek(None)
    }

    /// An empty ring whose keys are sealed at rest with `kek`.
    pub fn with_kek(kek: Option<Kek>) -> Self {
        Self {
            ring: RwLock::new(Ring {
                signing: None,
                verifying: HashMap::new(),
            }),
            kek,
        }
    }

    /// At start-up: every stored key must decrypt with the configured key-encryption key
    /// (else the server stops with [`KeyError::WrongKek`] or [`KeyError::NoKek`]), and keys
    /// stored unencrypted are sealed in place when one is configured. A database whose
    /// schema is not migrated yet has no keys to check.
    pub async fn check(&self, db: &DatabaseConnection) -> Result<(), KeyError> {
        let Ok(keys) = signing_key::Entity::find().all(db).await else {
            return Ok(());
        };
        for k in keys {
            let der = private_der(self.kek.as_ref(), &k.kid, &k.private_der)?;
            if let Some(kek) = &self.kek
                && !is_sealed(&k.private_der)
            {
                signing_key::Entity::update_many()
                    .col_expr(
                        signing_key::Column::PrivateDer,
                        sea_orm::sea_query::Expr::value(kek.seal(&k.kid, &der)?),
                    )
                    .filter(signing_key::Column::Kid.eq(k.kid.as_str()))
                    .exec(db)
                    .await?;
                tracing::info!(kid = %k.kid, "signing key encrypted at rest");
            }
        }
        if self.kek.is_none() {
            tracing::warn!(
                "token signing keys are stored unencrypted: set auth.key_encryption_key_file or {KEK_ENV}"
            );
        }
        Ok(())
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
        let mut fresh = read(db, self.kek.as_ref()).await?;
        if fresh.signing.is_none() {
            rotate(db, self.kek.as_ref()).await?;
            fresh = read(db, self.kek.as_ref()).await?;
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
        let fresh = read(db, self.kek.as_ref()).await.ok()?;
        let mut ring = self.ring.write().await;
        *ring = fresh;
        ring.verifying.get(kid).cloned()
    }

    /// Rereads the keys (after a rotation by this process).
    pub async fn reload(&self, db: &DatabaseConnection) -> Result<(), KeyError> {
        let fresh = read(db, self.kek.as_ref()).await?;
        *self.ring.write().await = fresh;
        Ok(())
    }
}

async fn read(db: &DatabaseConnection, kek: Option<&Kek>) -> Result<Ring, KeyError> {
    let keys = signing_key::Entity::find()
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(db)
        .await?;
    let now = Utc::now();
    let signing = match keys.iter().find(|k| k.retired_at.is_none()) {
        Some(k) => Some((
            k.kid.clone(),
            EncodingKey::from_ed_der(&private_der(kek, &k.kid, &k.private_der)?),
        )),
        None => None,
    };
    let verifying = keys
        .iter()
        .filter(|k| k.retired_at.is_none_or(|at| at + RETIRED_KEY_GRACE > now))
        .map(|k| (k.kid.clone(), DecodingKey::from_ed_der(&k.public_raw)))
        .collect();
    Ok(Ring { signing, verifying })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_kek_and_kid() {
        let kek = Kek::random().unwrap();
        let der = [PKCS8_ED25519_PREFIX.as_slice(), &[7u8; 32]].concat();
        let sealed = kek.seal("k1", &der).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(32).any(|w| w == [7u8; 32]), "no plain seed");
        assert_eq!(private_der(Some(&kek), "k1", &sealed).unwrap(), der);
        let other = Kek::random().unwrap();
        assert!(matches!(
            private_der(Some(&other), "k1", &sealed),
            Err(KeyError::WrongKek { .. })
        ));
        // Moved to another row: the key id is bound in.
        assert!(matches!(
            private_der(Some(&kek), "k2", &sealed),
            Err(KeyError::WrongKek { .. })
        ));
        assert!(matches!(
            private_der(None, "k1", &sealed),
            Err(KeyError::NoKek { .. })
        ));
        // A plain key from before a KEK was configured is still read.
        assert_eq!(private_der(Some(&kek), "k1", &der).unwrap(), der);
    }

    #[test]
    fn a_kek_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swt.db.kek");
        let made = Kek::from_file(&path).unwrap();
        assert_eq!(Kek::from_file(&path).unwrap().0, made.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Kek::from_file(&path),
            Err(KeyError::KekFile { .. })
        ));
    }
}
