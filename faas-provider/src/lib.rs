//! faas-provider: the OpenFaaS provider API of Locus.
//!
//! Floors, from the ground up: the wire [`types`], [`names`], [`quantity`] and
//! [`models`] (what a function is and whether it is acceptable), the [`store`] (redb),
//! [`error`] (the one HTTP error mapping), [`config`], [`auth`], [`metrics`], [`deploy`]
//! (validation), the data-plane seams in [`dataplane`] and [`events`], the shared [`state`], the routes
//! in [`api`], and [`server`] / [`cli`] on top.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dataplane;
pub mod deploy;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod forwarding;
pub mod metrics;
pub mod models;
pub mod names;
pub mod quantity;
pub mod route;
pub mod runtime;
pub mod server;
pub mod state;
pub mod store;
pub mod types;
pub mod up;

pub use api::app;
pub use server::run;
pub use state::AppState;
