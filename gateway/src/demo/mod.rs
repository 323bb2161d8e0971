//! `taxgate demo`: the gateway on an embedded default, with demo tax modules.

pub mod run;
pub mod upstream;
