//! Cryptographic building blocks: random tokens, keyed hashes, password hashing, the
//! upstream identity signature, login certificates (and the development CA that issues
//! them in tests and the demo). Nothing here knows about HTTP or the store.

pub mod certificate;
pub mod dev_ca;
pub mod hash_pool;
pub mod password;
pub mod secrets;
pub mod signing;
