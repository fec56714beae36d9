//! The server's time-stamping authority (RFC 3161), which seals signatures for the long term.
//!
//! Each server process makes a fresh P-256 key at start and has the organisation's CA certify it
//! for time-stamping only (extended key usage timeStamping, critical, as RFC 3161 requires). The
//! key lives in memory only — there is no key file to protect or leak; a token stays verifiable
//! after a restart because it carries its certificate, and the document security store keeps it.

use std::sync::Arc;

use outpost_pdf::{
    time_stamp_token, DocumentTimeStamper, PdfError, PdfSigner, SoftwareSigner, TimeStampTerms,
};

use crate::ca::{CaError, CertificateAuthority};
use crate::clock::Entropy;

/// The TSA policy written into tokens unless the organisation sets its own with
/// `--tsa-policy` ([`TimeStampAuthority::with_policy`]): an arc under IANA's reserved enterprise number 0, which
/// belongs to no organisation, standing for "no registered policy". (The UUID arc 2.25 would say
/// it better, but the DER library reads its OIDs back as malformed, so validators built on it
/// would refuse the token.)
pub const UNREGISTERED_POLICY: &str = "1.3.6.1.4.1.0.1";

/// A time-stamping authority ready to stamp.
#[derive(Clone)]
pub struct TimeStampAuthority {
    signer: Arc<SoftwareSigner>,
    policy: String,
}

impl TimeStampAuthority {
    /// A new authority: a fresh key, certified by `ca` from `now` (Unix seconds).
    pub fn start(
        ca: &CertificateAuthority,
        now: i64,
        entropy: &dyn Entropy,
    ) -> Result<TimeStampAuthority, CaError> {
        let (key_pkcs8, certificate) = ca.issue_time_stamping(now, entropy)?;
        let signer = SoftwareSigner::from_pkcs8_der(
            &key_pkcs8,
            &certificate,
            &[ca.certificate_der().to_vec()],
        )
        .map_err(|e| CaError::Signing(e.to_string()))?;
        Ok(TimeStampAuthority {
            signer: Arc::new(signer),
            policy: UNREGISTERED_POLICY.to_string(),
        })
    }

    /// The same authority writing `policy` (a dotted OID) into its tokens.
    pub fn with_policy(mut self, policy: &str) -> Result<TimeStampAuthority, CaError> {
        pkcs8::ObjectIdentifier::new(policy).map_err(|_| CaError::BadPolicy(policy.to_string()))?;
        self.policy = policy.to_string();
        Ok(self)
    }

    /// The authority's certificate (DER).
    pub fn certificate_der(&self) -> Vec<u8> {
        use pkcs8::der::Encode;
        self.signer.certificate().to_der().unwrap_or_default()
    }

    /// A stamper for one document: stamps with time `now` (Unix seconds) and a fresh serial.
    pub fn stamper(&self, now: i64, entropy: &dyn Entropy) -> impl DocumentTimeStamper + Send {
        let mut serial = vec![0u8; 16];
        entropy.fill(&mut serial);
        // Positive and minimally encoded: the first byte is 0x40..=0x7f.
        serial[0] = (serial[0] & 0x3f) | 0x40;
        Stamper {
            signer: self.signer.clone(),
            terms: TimeStampTerms {
                policy: self.policy.clone(),
                serial,
                time_ms: now.saturating_mul(1000),
            },
        }
    }
}

struct Stamper {
    signer: Arc<SoftwareSigner>,
    terms: TimeStampTerms,
}

impl DocumentTimeStamper for Stamper {
    fn time_stamp(&self, digest: &[u8; 32]) -> Result<Vec<u8>, PdfError> {
        time_stamp_token(digest, &self.terms, self.signer.as_ref())
    }
}
