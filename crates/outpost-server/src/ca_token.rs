//! The CA's private key on a PKCS#11 token (a smart card or HSM; SoftHSM2 in tests): the key never
//! leaves the token, which signs certificate and CRL digests with CKM_ECDSA.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ca::CaError;

/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), as CKA_EC_PARAMS holds it.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Which key on which token; kept in the CA directory as `ca-token.json` (never the PIN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeyLocation {
    /// The token's PKCS#11 module (a shared library).
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The label of the ECDSA P-256 key pair on the token.
    pub key_label: String,
}

/// A logged-in session holding the CA key.
pub struct TokenKey {
    session: Mutex<Session>,
    _context: Pkcs11,
    key: ObjectHandle,
    public_point: Vec<u8>,
}

fn token_error(error: Pkcs11Error) -> CaError {
    match error {
        Pkcs11Error::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            _,
        ) => CaError::TokenPin,
        Pkcs11Error::Pkcs11(RvError::PinLocked, _) => CaError::Token(
            "the token's PIN is locked; unlock it with the security officer PIN".into(),
        ),
        Pkcs11Error::Pkcs11(
            RvError::TokenNotPresent | RvError::DeviceRemoved | RvError::SlotIdInvalid,
            _,
        ) => CaError::Token("the token is not present; insert it and try again".into()),
        other => CaError::Token(other.to_string()),
    }
}

impl TokenKey {
    /// Logs in to the token labelled `location.token_label` and finds the key pair labelled
    /// `location.key_label` (it must be ECDSA P-256).
    pub fn open(location: &TokenKeyLocation, pin: &str) -> Result<TokenKey, CaError> {
        if !Path::new(&location.module).is_file() {
            return Err(CaError::Token(format!(
                "the PKCS#11 module {} does not exist",
                location.module.display()
            )));
        }
        let context = Pkcs11::new(&location.module).map_err(token_error)?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(token_error)?;
        let mut found = None;
        for slot in context.get_slots_with_token().map_err(token_error)? {
            let info = context.get_token_info(slot).map_err(token_error)?;
            if info.label().trim() == location.token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| {
            CaError::Token(format!(
                "no token labelled {:?} is present",
                location.token_label
            ))
        })?;
        let session = context.open_ro_session(slot).map_err(token_error)?;
        session
            .login(UserType::User, Some(&AuthPin::new(pin.to_owned().into())))
            .map_err(token_error)?;
        let label = Attribute::Label(location.key_label.as_bytes().to_vec());
        let find = |class| {
            session
                .find_objects(&[Attribute::Class(class), label.clone()])
                .map_err(token_error)
        };
        let key = *find(ObjectClass::PRIVATE_KEY)?.first().ok_or_else(|| {
            CaError::Token(format!(
                "the token has no private key labelled {:?}",
                location.key_label
            ))
        })?;
        let public = *find(ObjectClass::PUBLIC_KEY)?.first().ok_or_else(|| {
            CaError::Token(format!(
                "the token has no public key labelled {:?}",
                location.key_label
            ))
        })?;
        let mut params = Vec::new();
        let mut point = Vec::new();
        for attribute in session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(token_error)?
        {
            match attribute {
                Attribute::EcParams(bytes) => params = bytes,
                Attribute::EcPoint(bytes) => point = bytes,
                _ => {}
            }
        }
        if params != P256_PARAMS {
            return Err(CaError::Token(format!(
                "the key {:?} is not ECDSA P-256",
                location.key_label
            )));
        }
        // CKA_EC_POINT is the DER OCTET STRING around the uncompressed point.
        let public_point = match point.as_slice() {
            [0x04, 65, rest @ ..] if rest.len() == 65 => rest.to_vec(),
            raw if raw.len() == 65 && raw[0] == 0x04 => raw.to_vec(),
            _ => {
                return Err(CaError::Token(
                    "the token's public key point is malformed".into(),
                ))
            }
        };
        Ok(TokenKey {
            session: Mutex::new(session),
            _context: context,
            key,
            public_point,
        })
    }

    /// The public key as an uncompressed P-256 point.
    pub fn public_point(&self) -> &[u8] {
        &self.public_point
    }

    /// Signs `message` (ECDSA P-256 with SHA-256 computed here); the DER signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        let digest = Sha256::digest(message);
        let session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let raw = session
            .sign(&Mechanism::Ecdsa, self.key, &digest)
            .map_err(token_error)?;
        let signature = p256::ecdsa::Signature::from_slice(&raw)
            .map_err(|e| CaError::Token(format!("the token's signature is malformed: {e}")))?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}
