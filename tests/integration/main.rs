//! Integration tests: the real components served by edge-runner over real
//! sockets. One binary, one module per feature; see helpers.rs.

mod fixtures;
mod helpers;

mod admin;
mod api;
mod batch;
mod cache;
mod capabilities;
mod deploy;
mod errors;
mod faults;
mod flags;
mod hostile;
mod interfaces;
mod key_value;
mod openapi;
mod otlp;
mod process;
mod readme;
mod replicas;
mod runner;
mod sockets;
mod telemetry;
mod tls;
mod upstream;
mod wasip3;
