//! Passwords (Argon2id), the TOTP second factor (RFC 6238) and single-use recovery codes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};
use zeroize::Zeroizing;

use crate::clock::Entropy;

/// How many recovery codes a user gets at MFA enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// The shortest password the server accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The issuer shown in authenticator apps.
const TOTP_ISSUER: &str = "Outpost";

/// Why a password or second factor could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The password is too short.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    /// Hashing failed (only on exhausted memory or a bad stored hash).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// The stored TOTP secret cannot be used.
    #[error("the stored TOTP secret is invalid ({0}); reset the user's MFA")]
    BadSecret(String),
}

/// Hashes a password with Argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str, entropy: &dyn Entropy) -> Result<String, IdentityError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(IdentityError::PasswordTooShort);
    }
    let mut salt = [0u8; 16];
    entropy.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| IdentityError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| IdentityError::Hashing(e.to_string()))
}

/// Whether `password` matches the PHC string. A malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// What an administrator hands to the user at MFA enrolment. Shown once; the server keeps only
/// the secret and the hashes of the recovery codes.
pub struct SecondFactorEnrolment {
    /// The TOTP secret (20 random bytes), to store.
    pub secret: Zeroizing<Vec<u8>>,
    /// The secret in base32, for typing into an authenticator.
    pub secret_base32: String,
    /// The `otpauth://` URI, for a QR code.
    pub otpauth_uri: String,
    /// The recovery codes, in the form the user types them.
    pub recovery_codes: Vec<String>,
    /// Their hashes, to store.
    pub recovery_code_hashes: Vec<String>,
}

/// Creates a TOTP secret and a set of recovery codes for `username`.
pub fn new_second_factor(username: &str, entropy: &dyn Entropy) -> SecondFactorEnrolment {
    let mut secret = Zeroizing::new(vec![0u8; 20]);
    entropy.fill(&mut secret);
    let secret_base32 = Secret::from(secret.to_vec()).to_base32();
    let label = percent_encode(&format!("{TOTP_ISSUER}:{username}"));
    let otpauth_uri = format!(
        "otpauth://totp/{label}?secret={secret_base32}&issuer={TOTP_ISSUER}&algorithm=SHA1&digits=6&period=30"
    );
    let recovery_codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| new_recovery_code(entropy))
        .collect();
    let recovery_code_hashes = recovery_codes
        .iter()
        .map(|code| hash_recovery_code(code))
        .collect();
    SecondFactorEnrolment {
        secret,
        secret_base32,
        otpauth_uri,
        recovery_codes,
        recovery_code_hashes,
    }
}

/// The TOTP generator for a stored secret: SHA-1, six digits, 30-second steps, one step of skew
/// either way (RFC 6238's recommended defaults, what every authenticator app uses).
pub fn totp(secret: &[u8]) -> Result<Totp, IdentityError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.to_vec())
        .build()
        .map_err(|e| IdentityError::BadSecret(e.to_string()))
}

/// The time step a valid code belongs to, if `code` is valid at `now` (± one step).
pub fn totp_step(secret: &[u8], code: &str, now: i64) -> Result<Option<i64>, IdentityError> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now = u64::try_from(now).unwrap_or(0);
    Ok(totp(secret)?
        .check(code, now)
        .and_then(|step| i64::try_from(step).ok()))
}

/// The code an authenticator shows at `now` (for the CLI's demo output and for tests).
pub fn totp_code(secret: &[u8], now: i64) -> Result<String, IdentityError> {
    Ok(totp(secret)?
        .generate(u64::try_from(now).unwrap_or(0))
        .to_string())
}

/// Alphabet for recovery codes: no 0/O, 1/I/L.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

fn new_recovery_code(entropy: &dyn Entropy) -> String {
    let mut raw = [0u8; 10];
    entropy.fill(&mut raw);
    let chars: String = raw
        .iter()
        .map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The stored form of a recovery code: SHA-256 of its canonical form (upper case, no dashes or
/// spaces). Codes carry ~49 bits of randomness and work once, so a fast hash is enough.
pub fn hash_recovery_code(code: &str) -> String {
    let canonical: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// The stored form of a bearer token: hex SHA-256 of its value.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeededEntropy;

    #[test]
    fn rfc6238_sha1_test_vectors_are_reproduced() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", 8 digits there; the low
        // six digits of each are what a six-digit authenticator shows.
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(totp_code(secret, time).expect("code"), eight[2..]);
        }
    }

    #[test]
    fn a_code_is_valid_one_step_either_side_and_no_further() {
        let secret = b"12345678901234567890";
        let now = 1_700_000_000;
        let code = totp_code(secret, now).expect("code");
        let step = now / 30;
        assert_eq!(totp_step(secret, &code, now).expect("check"), Some(step));
        assert_eq!(
            totp_step(secret, &code, now + 30).expect("check"),
            Some(step)
        );
        assert_eq!(
            totp_step(secret, &code, now - 30).expect("check"),
            Some(step)
        );
        assert_eq!(totp_step(secret, &code, now + 61).expect("check"), None);
        assert_eq!(totp_step(secret, "12a456", now).expect("check"), None);
    }

    #[test]
    fn passwords_verify_and_short_ones_are_refused() {
        let entropy = SeededEntropy::new(1);
        let hash = hash_password("correct horse battery", &entropy).expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a phc string"));
        assert!(matches!(
            hash_password("short", &entropy),
            Err(IdentityError::PasswordTooShort)
        ));
    }

    #[test]
    fn recovery_codes_are_distinct_and_match_however_typed() {
        let enrolment = new_second_factor("ivanova", &SeededEntropy::new(2));
        assert_eq!(enrolment.recovery_codes.len(), RECOVERY_CODE_COUNT);
        let mut unique = enrolment.recovery_code_hashes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODE_COUNT);
        let code = &enrolment.recovery_codes[0];
        let typed = code.replace('-', " ").to_lowercase();
        assert_eq!(
            hash_recovery_code(&typed),
            enrolment.recovery_code_hashes[0]
        );
        assert!(enrolment
            .otpauth_uri
            .starts_with("otpauth://totp/Outpost%3Aivanova?secret="));
    }
}
