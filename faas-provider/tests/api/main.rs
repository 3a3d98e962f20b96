//! In-process tests of every provider route and status code (`oneshot`, no sockets),
//! plus the faas-cli replay, the property test over random operation sequences, and the
//! restart test that runs the real binary.

mod auth;
mod common;
mod faas_cli;
mod functions;
mod logs;
mod misc;
mod namespaces;
mod property;
mod restart;
mod secrets;
