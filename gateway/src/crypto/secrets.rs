//! Random tokens and keyed hashes.
//!
//! Contract: tokens come from the OS CSPRNG with 256 bits of entropy (SPEC S5 asks for
//! ≥ 128); the store keeps only [`Keyed::hash`] of a token, code or captcha answer, so a
//! copy of the data dir does not hand out live sessions or codes; comparisons of secrets
//! are constant-time ([`ct_eq`]).

use base64::Engine;
use hmac::{Hmac, Mac};
use rand::{rngs::OsRng, RngCore};
use sha2::Sha256;

/// A fresh 256-bit token, URL-safe base64 without padding (43 chars).
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random id (64 bits, hex) for things that are not credentials.
pub fn short_id() -> String {
    let mut bytes = [0u8; 8];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A request id for logs and upstream headers: unique, not secret, so it comes from the
/// thread-local generator (seeded from the OS) instead of a system call per request.
pub fn request_id() -> String {
    format!("{:016x}", rand::Rng::gen::<u64>(&mut rand::thread_rng()))
}

/// A 6-digit code, uniform over 000000–999999 (SPEC S3).
pub fn six_digits() -> String {
    let n = rand::Rng::gen_range(&mut OsRng, 0..1_000_000u32);
    format!("{n:06}")
}

/// Lower-case hex of a digest, without `hex::encode`'s char-by-char `String` building
/// (it showed in the proxy's profile: two digests per proxied request).
pub fn hex32(digest: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    // The output is exactly twice the input, so this cannot fail.
    let _ = hex::encode_to_slice(digest, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA256 under the gateway's secret key, with a domain label per use so a hash of
/// one kind can never stand in for another.
#[derive(Clone)]
pub struct Keyed {
    /// Keyed once; each use clones the precomputed inner and outer pads.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(<redacted>)")
    }
}

impl Keyed {
    pub fn new(key: &[u8]) -> Result<Keyed, hmac::digest::InvalidLength> {
        Ok(Keyed {
            mac: Hmac::<Sha256>::new_from_slice(key)?,
        })
    }

    pub fn mac(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// Plain HMAC-SHA256 of the concatenation of what `feed` passes to its argument,
    /// for signatures others recompute.
    pub fn raw_mac_with(&self, feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> [u8; 32] {
        let mut mac = self.mac.clone();
        feed(&mut |bytes| mac.update(bytes));
        mac.finalize().into_bytes().into()
    }

    /// Hex keyed hash of a secret, for storage and lookup.
    pub fn hash(&self, domain: &str, secret: &str) -> String {
        hex32(&self.mac(domain, &[secret.as_bytes()]))
    }

    /// Whether `secret` hashes to `stored`, compared in constant time.
    pub fn verify(&self, domain: &str, secret: &str, stored: &str) -> bool {
        ct_eq(self.hash(domain, secret).as_bytes(), stored.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex32_is_lower_case_hex() {
        let d: [u8; 32] = std::array::from_fn(|i| (i * 8 + 7) as u8);
        assert_eq!(hex32(&d), hex::encode(d));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn six_digits_are_six_digits() {
        for _ in 0..100 {
            let c = six_digits();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn keyed_hash_depends_on_domain_and_key() {
        let k = Keyed::new(&[1; 32]).unwrap();
        let h = k.hash("captcha", "abcd");
        assert!(k.verify("captcha", "abcd", &h));
        assert!(!k.verify("sms", "abcd", &h));
        assert!(!Keyed::new(&[2; 32]).unwrap().verify("captcha", "abcd", &h));
    }
}
