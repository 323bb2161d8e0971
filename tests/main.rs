//! Black-box tests: a real `taxgate` process (built by Cargo for this test target),
//! real stores in temp dirs (sled, or PostgreSQL on a cluster the tests start), real
//! upstream modules over HTTP, port 0 everywhere.
//! One test binary, so CI links once.

#[allow(dead_code, unused_imports)]
mod harness;

mod certificate_login;
mod crowd;
mod drills;
mod edge;
mod expiry;
mod login;
mod manage;
mod nodes;
mod openapi;
mod policy_ops;
mod proxy;
mod recovery;
mod register;
mod registry;
mod restart;
mod single_use;
mod store;
mod stuck_store;
