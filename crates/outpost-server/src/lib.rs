//! Outpost's central server: accounts, units and assignments, MFA and device enrolment, document
//! registration and content-addressed blobs, the audit log, and the HTTPS API the workstations
//! call. The binary (`outpost-server`) adds the admin CLI.
//!
//! Layers, top down: [`http`] (routes, wire errors) and the CLI call [`service`] (the rules: roles,
//! validation, audit), which calls [`store`] (SQLite or PostgreSQL) and [`blobs`] (object store).
//! Time and randomness come in through [`clock`].

#![forbid(unsafe_code)]

pub mod blobs;
pub mod ca;
pub mod ca_token;
pub mod clock;
pub mod demo;
pub mod http;
pub mod identity;
pub mod practice;
pub mod private_file;
pub mod serve;
pub mod service;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod tsa;
