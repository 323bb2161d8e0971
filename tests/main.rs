//! Black-box tests: a real `taxgate` process (built by Cargo for this test target),
//! real sled data dirs in temp dirs, real upstream modules over HTTP, port 0 everywhere.
//! One test binary, so CI links once.

#[allow(dead_code, unused_imports)]
mod harness;

mod login;
mod manage;
mod openapi;
mod policy_ops;
mod proxy;
mod recovery;
mod register;
mod registry;
mod restart;
