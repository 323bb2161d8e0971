//! Random tokens and keyed hashes.
//!
//! Contract: tokens come from the OS CSPRNG with 256 bits of entropy (SPEC S5 asks for
//! ≥ 128); the store keeps only [`Keyed::hash`] of a token, code or captcha answer, so a
//! copy of the data dir does not hand out live sessions or codes; comparisons of secrets
//! are constant-time ([`ct_eq`]).

use base64::Engine;
use rand::{rngs::OsRng, RngCore};

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
    let n = rand::Rng::gen::<u64>(&mut rand::thread_rng());
    let mut out = [0u8; 16];
    // The output is exactly twice the input, so this cannot fail.
    let _ = hex::encode_to_slice(n.to_be_bytes(), &mut out);
    ascii_string(&out)
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
    ascii_string(&out)
}

/// Hex digits as a `String` (one validating pass; never empty for hex input).
fn ascii_string(hex: &[u8]) -> String {
    String::from_utf8(hex.to_vec()).unwrap_or_default()
}

/// Constant-time equality of two byte strings (length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HMAC-SHA256 under the gateway's secret key, with a domain label per use so a hash of
/// one kind can never stand in for another.
///
/// ring's HMAC (BoringSSL's SHA-256: SHA-NI, AVX2 or SSSE3 code chosen at run time), the
/// implementation rustls already brings: on a CPU without SHA extensions it takes about
/// two thirds of the instructions of sha2's portable code, and one runs on every proxied
/// request (the identity signature; the session cookie's hash is memoized per token,
/// auth/session_cache.rs).
#[derive(Clone)]
pub struct Keyed {
    /// Keyed once: each use starts from the precomputed inner and outer pads.
    key: ring::hmac::Key,
}

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(<redacted>)")
    }
}

impl Keyed {
    /// HMAC takes a key of any length; the configuration asks for at least 32 bytes.
    pub fn new(key: &[u8]) -> Keyed {
        Keyed {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        }
    }

    pub fn mac(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        self.raw_mac_with(|mac| {
            mac(domain.as_bytes());
            for p in parts {
                mac(&(p.len() as u64).to_be_bytes());
                mac(p);
            }
        })
    }

    /// Plain HMAC-SHA256 of the concatenation of what `feed` passes to its argument,
    /// for signatures others recompute.
    pub fn raw_mac_with(&self, feed: impl FnOnce(&mut dyn FnMut(&[u8]))) -> [u8; 32] {
        let mut mac = ring::hmac::Context::with_key(&self.key);
        feed(&mut |bytes| mac.update(bytes));
        let mut out = [0u8; 32];
        out.copy_from_slice(mac.sign().as_ref());
        out
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
    fn request_ids_are_sixteen_hex_digits() {
        let (a, b) = (request_id(), request_id());
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
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

    /// The stored hashes of every existing data dir depend on this exact construction.
    #[test]
    fn keyed_mac_is_hmac_sha256_of_domain_and_length_prefixed_parts() {
        use hmac::{Hmac, Mac};
        let key = [9u8; 40];
        let mut reference = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        reference.update(b"session");
        reference.update(&3u64.to_be_bytes());
        reference.update(b"abc");
        reference.update(&0u64.to_be_bytes());
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(Keyed::new(&key).mac("session", &[b"abc", b""]), expected);
    }

    #[test]
    fn keyed_hash_depends_on_domain_and_key() {
        let k = Keyed::new(&[1; 32]);
        let h = k.hash("captcha", "abcd");
        assert!(k.verify("captcha", "abcd", &h));
        assert!(!k.verify("sms", "abcd", &h));
        assert!(!Keyed::new(&[2; 32]).verify("captcha", "abcd", &h));
    }
}
