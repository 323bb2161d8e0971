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
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
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
        let dummy = hash_blocking(&params, &crate::crypto::secrets::token())?;
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

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // The PHC string carries its own parameters; verify with those.
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
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
}
