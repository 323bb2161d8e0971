//! Cryptographic building blocks: random tokens, keyed hashes, password hashing and the
//! upstream identity signature. Nothing here knows about HTTP or the store.

pub mod certificate;
pub mod hash_pool;
pub mod password;
pub mod secrets;
pub mod signing;
