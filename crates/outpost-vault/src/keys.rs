//! The vault's key hierarchy.
//!
//! ```text
//! password ──Argon2id(salt, params)──┐
//!                                    ├─HKDF-SHA256─▶ wrapping key ──AES-256-GCM──▶ wrapped database key
//! device secret (OS keyring) ────────┘
//! ```
//! The 256-bit database key is random and never changes; a password change only rewraps it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::VaultError;

/// Length of the SQLCipher database key in bytes.
pub const DATABASE_KEY_LEN: usize = 32;
const DEVICE_SECRET_LEN: usize = 32;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const KEY_FILE_FORMAT: u32 = 1;
const HKDF_INFO: &[u8] = b"outpost vault key wrap v1";

/// Argon2id cost parameters, stored in the key file beside the salt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism.
    pub p_cost: u32,
}

impl KdfParams {
    /// The parameters new vaults use: 64 MiB, 3 passes, 1 lane (about half a second on a laptop).
    pub const RECOMMENDED: Self = Self {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Cheap parameters for tests and benchmarks only. Never use them for a real vault.
    pub const INSECURE_FAST_FOR_TESTS: Self = Self {
        m_cost_kib: 1024,
        t_cost: 1,
        p_cost: 1,
    };
}

/// A failure of the OS keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The keyring cannot be reached (no Secret Service, locked collection, ...).
    #[error("{0}")]
    Unavailable(String),
}

/// Where per-vault device secrets live. The real implementation is [`OsKeyring`].
pub trait DeviceSecretStore: Send + Sync {
    /// The keyring service name entries are filed under.
    fn service(&self) -> &str;
    /// Reads the secret for `account`; `Ok(None)` when there is no such entry.
    fn load(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyringError>;
    /// Stores (or replaces) the secret for `account`.
    fn store(&self, account: &str, secret: &[u8]) -> Result<(), KeyringError>;
    /// Deletes the secret for `account`; deleting a missing entry is not an error.
    fn delete(&self, account: &str) -> Result<(), KeyringError>;
}

/// The operating system's keyring (Secret Service on Linux) through the `keyring` crate.
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
}

impl OsKeyring {
    /// Entries are filed under `service` (Outpost uses `"outpost"`; tests use their own names).
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, KeyringError> {
        keyring::Entry::new(&self.service, account)
            .map_err(|e| KeyringError::Unavailable(e.to_string()))
    }
}

impl DeviceSecretStore for OsKeyring {
    fn service(&self) -> &str {
        &self.service
    }

    fn load(&self, account: &str) -> Result<Option<Zeroizing<Vec<u8>>>, KeyringError> {
        match self.entry(account)?.get_secret() {
            Ok(secret) => Ok(Some(Zeroizing::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(KeyringError::Unavailable(e.to_string())),
        }
    }

    fn store(&self, account: &str, secret: &[u8]) -> Result<(), KeyringError> {
        self.entry(account)?
            .set_secret(secret)
            .map_err(|e| KeyringError::Unavailable(e.to_string()))
    }

    fn delete(&self, account: &str) -> Result<(), KeyringError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(KeyringError::Unavailable(e.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KdfRecord {
    algorithm: String,
    version: u32,
    #[serde(flatten)]
    params: KdfParams,
    salt: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WrapRecord {
    algorithm: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KeyFileBody {
    format: u32,
    vault_id: Uuid,
    user: String,
    keyring_account: String,
    kdf: KdfRecord,
    wrap: WrapRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFileOnDisk {
    #[serde(flatten)]
    body: KeyFileBody,
    /// SHA-256 of the body's canonical JSON: tells a damaged file from a wrong password.
    checksum: String,
}

/// The vault's key file: the wrapped database key and how to unwrap it. Holds no secret in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    body: KeyFileBody,
}

impl KeyFile {
    /// The vault this key file belongs to.
    pub fn vault_id(&self) -> Uuid {
        self.body.vault_id
    }

    /// The user this key file belongs to.
    pub fn user(&self) -> &str {
        &self.body.user
    }

    /// The keyring account holding this vault's device secret.
    pub fn keyring_account(&self) -> &str {
        &self.body.keyring_account
    }

    /// The Argon2id parameters of the current wrapping.
    pub fn kdf_params(&self) -> KdfParams {
        self.body.kdf.params
    }

    /// Makes a new device secret (stored in `keyring`) and wraps `database_key` under `password`.
    pub(crate) fn create(
        vault_id: Uuid,
        user: &str,
        password: &str,
        database_key: &[u8; DATABASE_KEY_LEN],
        kdf: KdfParams,
        keyring: &dyn DeviceSecretStore,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, VaultError> {
        let account = format!("vault-device-secret:{vault_id}");
        let mut secret = Zeroizing::new([0u8; DEVICE_SECRET_LEN]);
        rng.fill_bytes(secret.as_mut());
        keyring
            .store(&account, secret.as_ref())
            .map_err(|e| VaultError::KeyringUnavailable(e.to_string()))?;
        Self::wrap(
            vault_id,
            user,
            account,
            password,
            secret.as_ref(),
            database_key,
            kdf,
            rng,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn wrap(
        vault_id: Uuid,
        user: &str,
        keyring_account: String,
        password: &str,
        device_secret: &[u8],
        database_key: &[u8; DATABASE_KEY_LEN],
        kdf: KdfParams,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, VaultError> {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut body = KeyFileBody {
            format: KEY_FILE_FORMAT,
            vault_id,
            user: user.to_owned(),
            keyring_account,
            kdf: KdfRecord {
                algorithm: "argon2id".into(),
                version: 0x13,
                params: kdf,
                salt: hex::encode(salt),
            },
            wrap: WrapRecord {
                algorithm: "aes-256-gcm".into(),
                nonce: hex::encode(nonce),
                ciphertext: String::new(),
            },
        };
        let wrapping_key = derive_wrapping_key(password, device_secret, &salt, kdf)
            .map_err(VaultError::KeyDerivation)?;
        let cipher = Aes256Gcm::new_from_slice(wrapping_key.as_ref())
            .map_err(|_| VaultError::KeyDerivation("wrapping key has the wrong length".into()))?;
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: database_key,
                    aad: &associated_data(&body),
                },
            )
            .map_err(|_| VaultError::KeyDerivation("wrapping the vault key failed".into()))?;
        body.wrap.ciphertext = hex::encode(ciphertext);
        Ok(Self { body })
    }

    /// Unwraps the database key with `password` and the device secret from `keyring`.
    ///
    /// This is the one way to get the raw database key, which can open the vault in any
    /// SQLCipher 4 tool: treat it like the documents themselves.
    pub fn unwrap_database_key(
        &self,
        password: &str,
        keyring: &dyn DeviceSecretStore,
    ) -> Result<Zeroizing<[u8; DATABASE_KEY_LEN]>, VaultError> {
        let secret = self.device_secret(keyring)?;
        self.unwrap_with_secret(password, &secret)
    }

    fn device_secret(
        &self,
        keyring: &dyn DeviceSecretStore,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        keyring
            .load(&self.body.keyring_account)
            .map_err(|e| VaultError::KeyringUnavailable(e.to_string()))?
            .ok_or_else(|| VaultError::DeviceSecretMissing {
                service: keyring.service().to_owned(),
                account: self.body.keyring_account.clone(),
            })
    }

    fn unwrap_with_secret(
        &self,
        password: &str,
        device_secret: &[u8],
    ) -> Result<Zeroizing<[u8; DATABASE_KEY_LEN]>, VaultError> {
        let corrupt = |reason: &str| VaultError::CorruptKeyFile {
            path: PathBuf::new(),
            reason: reason.to_owned(),
        };
        let salt = hex::decode(&self.body.kdf.salt).map_err(|_| corrupt("salt is not hex"))?;
        let nonce = hex::decode(&self.body.wrap.nonce).map_err(|_| corrupt("nonce is not hex"))?;
        let ciphertext = hex::decode(&self.body.wrap.ciphertext)
            .map_err(|_| corrupt("wrapped key is not hex"))?;
        if nonce.len() != NONCE_LEN {
            return Err(corrupt("nonce has the wrong length"));
        }
        let wrapping_key =
            derive_wrapping_key(password, device_secret, &salt, self.body.kdf.params)
                .map_err(|reason| corrupt(&reason))?;
        let cipher = Aes256Gcm::new_from_slice(wrapping_key.as_ref())
            .map_err(|_| corrupt("wrapping key has the wrong length"))?;
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &associated_data(&self.body),
                    },
                )
                .map_err(|_| VaultError::WrongPassword {
                    user: self.body.user.clone(),
                })?,
        );
        let mut key = Zeroizing::new([0u8; DATABASE_KEY_LEN]);
        if plain.len() != DATABASE_KEY_LEN {
            return Err(corrupt("the unwrapped key has the wrong length"));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }

    /// Rewraps the same database key under `new_password` with fresh salt and nonce.
    pub(crate) fn rewrap(
        &self,
        old_password: &str,
        new_password: &str,
        kdf: KdfParams,
        keyring: &dyn DeviceSecretStore,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<Self, VaultError> {
        let secret = self.device_secret(keyring)?;
        let key = self.unwrap_with_secret(old_password, &secret)?;
        Self::wrap(
            self.body.vault_id,
            &self.body.user,
            self.body.keyring_account.clone(),
            new_password,
            &secret,
            &key,
            kdf,
            rng,
        )
    }

    /// Reads and checks a key file. A damaged file gives [`VaultError::CorruptKeyFile`].
    pub fn read(path: &Path) -> Result<Self, VaultError> {
        let corrupt = |reason: String| VaultError::CorruptKeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = fs::read(path).map_err(|e| VaultError::io(path, e))?;
        let on_disk: KeyFileOnDisk = serde_json::from_slice(&text)
            .map_err(|e| corrupt(format!("it is not a readable key file: {e}")))?;
        if on_disk.checksum != checksum(&on_disk.body) {
            return Err(corrupt("its checksum does not match its contents".into()));
        }
        let body = on_disk.body;
        if body.format != KEY_FILE_FORMAT {
            return Err(corrupt(format!("unknown key file format {}", body.format)));
        }
        if body.kdf.algorithm != "argon2id" || body.wrap.algorithm != "aes-256-gcm" {
            return Err(corrupt(
                "unknown key derivation or wrapping algorithm".into(),
            ));
        }
        Ok(Self { body })
    }

    /// Writes the key file atomically: a temporary file in the same folder, fsync, rename, fsync the folder.
    pub(crate) fn write_atomically(&self, path: &Path) -> Result<(), VaultError> {
        let on_disk = KeyFileOnDisk {
            checksum: checksum(&self.body),
            body: self.body.clone(),
        };
        let json = serde_json::to_vec_pretty(&on_disk)
            .map_err(|e| VaultError::KeyDerivation(format!("cannot encode key file: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        let mut file = fs::File::create(&tmp).map_err(|e| VaultError::io(&tmp, e))?;
        file.write_all(&json).map_err(|e| VaultError::io(&tmp, e))?;
        file.sync_all().map_err(|e| VaultError::io(&tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| VaultError::io(path, e))?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| VaultError::io(dir, e))?;
        }
        Ok(())
    }
}

fn checksum(body: &KeyFileBody) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

/// Binds the wrapped key to its vault, user and parameters: moving a key file to another vault fails.
fn associated_data(body: &KeyFileBody) -> Vec<u8> {
    let mut aad = Vec::new();
    aad.extend_from_slice(b"outpost-vault-key-v1\0");
    aad.extend_from_slice(body.vault_id.as_bytes());
    aad.extend_from_slice(body.user.as_bytes());
    aad.push(0);
    aad.extend_from_slice(body.kdf.salt.as_bytes());
    for n in [
        body.kdf.params.m_cost_kib,
        body.kdf.params.t_cost,
        body.kdf.params.p_cost,
    ] {
        aad.extend_from_slice(&n.to_be_bytes());
    }
    aad
}

fn derive_wrapping_key(
    password: &str,
    device_secret: &[u8],
    salt: &[u8],
    kdf: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| format!("invalid Argon2id parameters: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut stretched = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password.as_bytes(), salt, stretched.as_mut())
        .map_err(|e| format!("Argon2id failed: {e}"))?;
    let hk = Hkdf::<Sha256>::new(Some(device_secret), stretched.as_ref());
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand(HKDF_INFO, okm.as_mut())
        .map_err(|_| "HKDF output length".to_owned())?;
    Ok(okm)
}
