//! Integration tests: the real components served by edge-runner over real
//! sockets. One binary, one module per feature; see helpers.rs.

mod fixtures;
mod helpers;

mod admin;
mod api;
mod batch;
mod cache;
mod deploy;
mod errors;
mod key_value;
mod openapi;
mod process;
mod redis;
mod runner;
mod upstream;
