//! Time and randomness, passed in so that tests are deterministic.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use base64::Engine;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// The current time, in Unix seconds.
pub trait Clock: Send + Sync {
    /// Now, in Unix seconds (UTC).
    fn now(&self) -> i64;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock that moves only when told to (for tests of expiry, TOTP windows and lockout).
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now))
    }

    /// Moves the clock forward (or back, with a negative value) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A source of secret random bytes.
pub trait Entropy: Send + Sync {
    /// Fills `buffer` with random bytes.
    fn fill(&self, buffer: &mut [u8]);
}

/// The operating system's random number generator.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buffer: &mut [u8]) {
        rand_core::OsRng.fill_bytes(buffer);
    }
}

/// A seeded generator for tests: the same seed gives the same ids and tokens.
pub struct SeededEntropy(Mutex<rand_chacha::ChaCha20Rng>);

impl SeededEntropy {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy(Mutex::new(rand_chacha::ChaCha20Rng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buffer: &mut [u8]) {
        match self.0.lock() {
            Ok(mut rng) => rng.fill_bytes(buffer),
            Err(poisoned) => poisoned.into_inner().fill_bytes(buffer),
        }
    }
}

/// A new random UUID (v4) in hyphenated form.
pub fn new_id(entropy: &dyn Entropy) -> String {
    let mut bytes = [0u8; 16];
    entropy.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A new 256-bit secret token, unpadded base64url.
pub fn new_token(entropy: &dyn Entropy) -> String {
    let mut bytes = [0u8; 32];
    entropy.fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
