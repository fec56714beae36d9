//! Signing with a hardware token (smart card, USB token) through its PKCS #11 module: choose the
//! token and the key, give the PIN, sign. The private key never leaves the token; the certificate
//! is read from it. A wrong PIN, a locked token and a removed token each give their own error.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session as TokenSession, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::Decode;
use outpost_pdf::{Certificate, PdfError, PdfSigner, SignatureAlgorithm};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::signing::{SignOptions, SignOutcome};
use crate::{DocumentId, Session, WorkstationError};

/// Where Debian's SoftHSM2 puts its module; real tokens come with their vendor's module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Environment variable naming the PKCS #11 module to use.
pub const PKCS11_MODULE_ENV: &str = "OUTPOST_PKCS11_MODULE";

/// The PKCS #11 module: `$OUTPOST_PKCS11_MODULE`, else SoftHSM2's.
pub fn default_pkcs11_module() -> PathBuf {
    std::env::var_os(PKCS11_MODULE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SOFTHSM2_MODULE))
}

/// A token present in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The slot it is in.
    pub slot: u64,
    /// Its label.
    pub label: String,
    /// Its serial number.
    pub serial: String,
    /// Who made it.
    pub manufacturer: String,
}

/// A signing key on a token (a private key with a certificate of the same `CKA_ID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenKeyInfo {
    /// `CKA_ID`, hex.
    pub id: String,
    /// `CKA_LABEL`.
    pub label: String,
    /// The certificate's subject.
    pub subject: String,
}

/// Which token key to sign with, and its PIN.
#[derive(Clone, Deserialize)]
pub struct TokenChoice {
    /// The PKCS #11 module.
    pub module: PathBuf,
    /// The token's slot.
    pub slot: u64,
    /// The key's `CKA_ID`, hex.
    pub key_id: String,
    /// The user PIN (never logged, never stored).
    pub pin: String,
}

impl TokenChoice {
    /// The key as a PKCS #11 URI (RFC 7512), e.g. `pkcs11:slot-id=3;id=%01`: how a batch records
    /// which token key signed it. (An id that is not hex is written as given; such a key cannot
    /// be opened, so nothing is signed with it.)
    pub fn key_uri(&self) -> String {
        let id = match hex::decode(&self.key_id) {
            Ok(bytes) => bytes.iter().map(|byte| format!("%{byte:02X}")).collect(),
            Err(_) => self.key_id.clone(),
        };
        format!("pkcs11:slot-id={};id={id}", self.slot)
    }
}

impl std::fmt::Debug for TokenChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The PIN never reaches a log.
        f.debug_struct("TokenChoice")
            .field("module", &self.module)
            .field("slot", &self.slot)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").finish_non_exhaustive()
    }
}

fn token_error(e: Pkcs11Error) -> WorkstationError {
    match e {
        Pkcs11Error::Pkcs11(RvError::PinIncorrect, _) => WorkstationError::TokenWrongPin,
        Pkcs11Error::Pkcs11(RvError::PinLocked, _) => WorkstationError::TokenLocked,
        Pkcs11Error::Pkcs11(
            RvError::TokenNotPresent
            | RvError::DeviceRemoved
            | RvError::SlotIdInvalid
            | RvError::TokenNotRecognized
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            // The key found at login is gone: the token was taken out (SoftHSM2 says so when its
            // storage goes away) or the key deleted.
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid,
            _,
        ) => WorkstationError::TokenRemoved,
        Pkcs11Error::LibraryLoading(e) => WorkstationError::TokenModule(e.to_string()),
        other => WorkstationError::Token(other.to_string()),
    }
}

/// An initialised module; finalised when dropped.
fn open_module(module: &Path) -> Result<Pkcs11, WorkstationError> {
    if !module.is_file() {
        return Err(WorkstationError::TokenModule(format!(
            "{} does not exist",
            module.display()
        )));
    }
    let context = Pkcs11::new(module).map_err(token_error)?;
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(token_error)?;
    Ok(context)
}

fn find_slot(context: &Pkcs11, slot: u64) -> Result<Slot, WorkstationError> {
    context
        .get_slots_with_token()
        .map_err(token_error)?
        .into_iter()
        .find(|s| s.id() == slot)
        .ok_or(WorkstationError::TokenRemoved)
}

/// The tokens present behind `module`.
pub fn list_tokens(module: &Path) -> Result<Vec<TokenInfo>, WorkstationError> {
    let context = open_module(module)?;
    let mut tokens = Vec::new();
    for slot in context.get_slots_with_token().map_err(token_error)? {
        let info = context.get_token_info(slot).map_err(token_error)?;
        tokens.push(TokenInfo {
            slot: slot.id(),
            label: info.label().trim().to_owned(),
            serial: info.serial_number().trim().to_owned(),
            manufacturer: info.manufacturer_id().trim().to_owned(),
        });
    }
    Ok(tokens)
}

fn logged_in(context: &Pkcs11, slot: u64, pin: &str) -> Result<TokenSession, WorkstationError> {
    let session = context
        .open_ro_session(find_slot(context, slot)?)
        .map_err(token_error)?;
    session
        .login(UserType::User, Some(&AuthPin::new(pin.to_owned().into())))
        .map_err(token_error)?;
    Ok(session)
}

fn attribute_bytes(
    session: &TokenSession,
    object: ObjectHandle,
    kind: AttributeType,
) -> Result<Vec<u8>, WorkstationError> {
    for attribute in session
        .get_attributes(object, &[kind])
        .map_err(token_error)?
    {
        match attribute {
            Attribute::Id(bytes) | Attribute::Value(bytes) => return Ok(bytes),
            Attribute::Label(bytes) => return Ok(bytes),
            _ => {}
        }
    }
    Ok(Vec::new())
}

/// The keys on the token that have a certificate.
pub fn token_keys(
    module: &Path,
    slot: u64,
    pin: &str,
) -> Result<Vec<TokenKeyInfo>, WorkstationError> {
    let context = open_module(module)?;
    let session = logged_in(&context, slot, pin)?;
    let mut keys = Vec::new();
    for certificate in session
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .map_err(token_error)?
    {
        let id = attribute_bytes(&session, certificate, AttributeType::Id)?;
        let has_key = !session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Id(id.clone()),
            ])
            .map_err(token_error)?
            .is_empty();
        if !has_key {
            continue;
        }
        let der = attribute_bytes(&session, certificate, AttributeType::Value)?;
        let subject = Certificate::from_der(&der)
            .map(|c| c.tbs_certificate.subject.to_string())
            .unwrap_or_default();
        let label = attribute_bytes(&session, certificate, AttributeType::Label)?;
        keys.push(TokenKeyInfo {
            id: hex::encode(&id),
            label: String::from_utf8_lossy(&label).into_owned(),
            subject,
        });
    }
    Ok(keys)
}

/// A logged-in token key that signs for [`outpost_pdf::sign_pdf`].
pub struct TokenSigner {
    // Field order matters: the session closes before the module is finalised.
    session: Mutex<TokenSession>,
    _context: Pkcs11,
    key: ObjectHandle,
    certificate: Certificate,
    chain: Vec<Certificate>,
    algorithm: SignatureAlgorithm,
}

impl TokenSigner {
    /// Logs in to the token with `choice.pin` and finds the key and its certificate.
    pub fn open(choice: &TokenChoice) -> Result<Self, WorkstationError> {
        let context = open_module(&choice.module)?;
        let session = logged_in(&context, choice.slot, &choice.pin)?;
        let id = hex::decode(&choice.key_id)
            .map_err(|_| WorkstationError::Token("the key id is not hex".into()))?;
        let find = |class| {
            session
                .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                .map_err(token_error)
        };
        let key = *find(ObjectClass::PRIVATE_KEY)?.first().ok_or_else(|| {
            WorkstationError::Token(format!(
                "the token has no private key with id {}",
                choice.key_id
            ))
        })?;
        let certificate_object = *find(ObjectClass::CERTIFICATE)?.first().ok_or_else(|| {
            WorkstationError::Token(format!(
                "the token has no certificate with id {}",
                choice.key_id
            ))
        })?;
        let der = attribute_bytes(&session, certificate_object, AttributeType::Value)?;
        let certificate = Certificate::from_der(&der).map_err(|e| {
            WorkstationError::Token(format!("the token's certificate is unreadable: {e}"))
        })?;
        let algorithm = match certificate
            .tbs_certificate
            .subject_public_key_info
            .algorithm
            .oid
            .to_string()
            .as_str()
        {
            "1.2.840.10045.2.1" => SignatureAlgorithm::EcdsaP256Sha256,
            "1.2.840.113549.1.1.1" => SignatureAlgorithm::RsaSha256,
            other => {
                return Err(WorkstationError::Token(format!(
                    "the token's key type ({other}) is not supported: use ECDSA P-256 or RSA"
                )))
            }
        };
        Ok(Self {
            session: Mutex::new(session),
            _context: context,
            key,
            certificate,
            chain: Vec::new(),
            algorithm,
        })
    }

    /// The PDF signer's error for the token's refusal: one with a code of its own (taken out,
    /// locked, PIN no longer accepted), which the workstation tells as such.
    fn refused(e: Pkcs11Error) -> PdfError {
        let error = token_error(e);
        match error {
            WorkstationError::TokenWrongPin
            | WorkstationError::TokenLocked
            | WorkstationError::TokenRemoved => PdfError::SignerRefused {
                code: error.code(),
                message: error.to_string(),
            },
            other => PdfError::Signing(format!("the token did not sign: {other}")),
        }
    }

    /// Embeds, from `candidates` (the vault's trust anchors), the certificate that issued the
    /// token's, so validators that know only the root find the whole path in the signature.
    pub fn with_issuer_from(mut self, candidates: &[Certificate]) -> Self {
        let issuer = &self.certificate.tbs_certificate.issuer;
        self.chain = candidates
            .iter()
            .filter(|c| &c.tbs_certificate.subject == issuer)
            .cloned()
            .collect();
        self
    }
}

impl PdfSigner for TokenSigner {
    fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PdfError> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        match self.algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => {
                let digest = Sha256::digest(message);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.key, &digest)
                    .map_err(Self::refused)?;
                let signature = p256::ecdsa::Signature::from_slice(&raw).map_err(|e| {
                    PdfError::Signing(format!("the token's signature is malformed: {e}"))
                })?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            SignatureAlgorithm::RsaSha256 => session
                .sign(&Mechanism::Sha256RsaPkcs, self.key, message)
                .map_err(Self::refused),
        }
    }
}

impl Session {
    /// Signs `document` with a key on a token, like [`Session::sign_document`] does with a vault
    /// key. A wrong PIN or a missing token is refused before anything is written.
    pub fn sign_document_with_token(
        &self,
        document: &DocumentId,
        token: &TokenChoice,
        options: &SignOptions,
    ) -> Result<SignOutcome, WorkstationError> {
        self.refuse_tokens_in_tutorial()?;
        let signer = TokenSigner::open(token)?.with_issuer_from(&self.anchors()?);
        self.sign_with(document, options, &signer, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    #[test]
    fn a_tokens_refusals_have_errors_of_their_own() {
        let refused = |rv| token_error(Pkcs11Error::Pkcs11(rv, Function::Sign));
        assert_eq!(refused(RvError::PinIncorrect).code(), "token_wrong_pin");
        assert_eq!(refused(RvError::PinLocked).code(), "token_locked");
        for removed in [
            RvError::TokenNotPresent,
            RvError::DeviceRemoved,
            RvError::SessionHandleInvalid,
            RvError::ObjectHandleInvalid,
            RvError::KeyHandleInvalid,
        ] {
            assert_eq!(refused(removed).code(), "token_removed");
        }
        assert_eq!(refused(RvError::GeneralError).code(), "token_error");
        // Each says what to do.
        assert!(refused(RvError::PinLocked).to_string().contains("SO PIN"));
        // Met while signing, a refusal reaches the workstation with its code; another failure
        // is a signing failure.
        let while_signing = |rv| {
            WorkstationError::Engine(TokenSigner::refused(Pkcs11Error::Pkcs11(
                rv,
                Function::Sign,
            )))
        };
        assert_eq!(while_signing(RvError::PinLocked).code(), "token_locked");
        assert_eq!(
            while_signing(RvError::DeviceRemoved).code(),
            "token_removed"
        );
        assert_eq!(
            while_signing(RvError::GeneralError).code(),
            "pdf_engine_error"
        );
    }
}
