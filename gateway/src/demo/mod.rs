//! `taxgate demo`: the gateway on an embedded default, with demo tax modules.

pub mod pki;
pub mod run;
pub mod upstream;
