//! taxgate: the login and authorization gateway of a provincial e-tax bureau.
//!
//! A pingora reverse proxy in front of the tax modules: the two-stage enterprise login,
//! sessions, and a Cedar decision on every request before it is forwarded. State lives in
//! the store: sled embedded, or PostgreSQL shared by several nodes. See README.md for
//! the flows and DESIGN notes; each module's doc states its contract.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod error;
pub mod identity;
pub mod metrics;
pub mod nodes;
pub mod policy;
pub mod portal;
pub mod priority;
pub mod providers;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod store;
