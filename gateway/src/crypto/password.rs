//! Password hashing with argon2id, off the async runtime.
//!
//! Contract:
//! - [`Hasher::hash`] and [`Hasher::verify`] run argon2 on a [`HashPool`] of
//!   `concurrency` threads at a lower CPU priority, so a login storm queues and takes the
//!   CPU the proxy leaves idle instead of sharing it with proxied traffic (SPEC S1, P3);
//! - hashes are PHC strings that carry their own parameters, so old hashes keep verifying
//!   after the parameters change, and [`Hasher::needs_rehash`] tells when to upgrade;
//! - [`Hasher::verify_dummy`] spends the same time as a real verification, for unknown
//!   accounts (SPEC L1: an unknown account and a wrong password look the same).

use super::hash_pool::HashPool;
use crate::config::Argon2Params;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use std::cell::RefCell;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("password hashing task failed")]
    Join,
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    pool: HashPool,
    /// A hash of a random password, verified against for unknown accounts.
    dummy: Arc<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    pub fn new(p: &Argon2Params) -> Result<Hasher, HashError> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        // On a thread of its own, so its argon2 memory goes when the thread does.
        let dummy = std::thread::scope(|s| {
            s.spawn(|| hash_blocking(&params, &crate::crypto::secrets::token()))
                .join()
                .map_err(|_| HashError::Join)
        })??;
        Ok(Hasher {
            params,
            pool: HashPool::new(p.concurrency, p.nice)
                .map_err(|e| HashError::Argon2(format!("hashing threads: {e}")))?,
            dummy: Arc::new(dummy),
        })
    }

    /// Hashes a new password (PHC string with a fresh random salt).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.to_string();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Hashing outside the runtime, for the command line (registry import).
    pub fn hash_sync(&self, password: &str) -> Result<String, HashError> {
        hash_blocking(&self.params, password)
    }

    /// Whether `password` matches `phc`. A malformed stored hash is a mismatch.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, HashError> {
        let password = password.to_string();
        let phc = phc.to_string();
        self.run(move || verify_blocking(&password, &phc)).await
    }

    /// Spends a verification's time and answers `false`.
    pub async fn verify_dummy(&self, password: &str) -> Result<bool, HashError> {
        let dummy = self.dummy.clone();
        let password = password.to_string();
        self.run(move || {
            let _ = verify_blocking(&password, &dummy);
            false
        })
        .await
    }

    /// Whether a stored hash was made with other parameters than the current ones.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        match PasswordHash::new(phc).and_then(|h| Params::try_from(&h)) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HashError> {
        self.pool.run(f).await.map_err(|_| HashError::Join)
    }
}

thread_local! {
    /// argon2's working memory (19 MiB at the production parameters), kept by each
    /// hashing thread between hashes. Allocating it per hash cost a fresh mapping and
    /// ~9 ms of page faults and zeroing on every login (21 ms instead of 12 ms).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` and `salt` into `out`, in this thread's reusable memory.
fn argon2_into(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    MEMORY.with_borrow_mut(|blocks| {
        let n = params.block_count();
        if blocks.len() < n {
            blocks.resize(n, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..n])
    })
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashError> {
    let err = |e: &dyn std::fmt::Display| HashError::Argon2(e.to_string());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|e| err(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2_into(&argon, params, password.as_bytes(), salt_bytes, &mut out).map_err(|e| err(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string, computed with the parameters, algorithm
/// and version the string carries. Anything malformed is a mismatch.
fn verify_blocking(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let algorithm = Algorithm::try_from(parsed.algorithm);
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&parsed))
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    argon2_into(&argon, &params, password.as_bytes(), salt_bytes, out).is_ok()
        && crate::crypto::secrets::ct_eq(out, expected.as_bytes())
}

impl From<HashError> for crate::error::Error {
    fn from(e: HashError) -> crate::error::Error {
        crate::error::Error::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Hasher {
        Hasher::new(&Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            concurrency: 1,
            nice: 0,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hash_verifies_and_rejects() {
        let h = fast();
        let phc = h.hash("Correct horse 1").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("Correct horse 1", &phc).await.unwrap());
        assert!(!h.verify("correct horse 1", &phc).await.unwrap());
        assert!(!h.verify("x", "not a hash").await.unwrap());
        assert!(!h.verify_dummy("anything").await.unwrap());
    }

    #[tokio::test]
    async fn hashes_keep_their_parameters() {
        let h = fast();
        let phc = h.hash("pw-123456").await.unwrap();
        assert!(!h.needs_rehash(&phc));
        let stronger = Hasher::new(&Argon2Params {
            memory_kib: 128,
            iterations: 2,
            parallelism: 1,
            concurrency: 1,
            nice: 0,
        })
        .unwrap();
        assert!(stronger.needs_rehash(&phc));
        assert!(stronger.verify("pw-123456", &phc).await.unwrap());
    }

    /// Hashes made by the argon2 crate's own API (every hash stored before the reusable
    /// memory) verify here, and hashes made here verify there.
    #[test]
    fn compatible_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let params = Params::new(64, 2, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"pw-123456", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_blocking("pw-123456", &theirs));
        assert!(!verify_blocking("pw-123457", &theirs));
        let ours = hash_blocking(&params, "pw-123456").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pw-123456", &parsed)
            .is_ok());
        assert!(Argon2::default().verify_password(b"pw-x", &parsed).is_err());
        // Other parameters in the same thread: the kept memory grows, results stay right.
        let big = hash_blocking(&Params::new(256, 1, 1, None).unwrap(), "pw-123456").unwrap();
        assert!(verify_blocking("pw-123456", &big) && verify_blocking("pw-123456", &ours));
    }
}
