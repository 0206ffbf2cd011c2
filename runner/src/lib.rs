//! edge-runner: a Spin-compatible host for edge-processor, on wasmtime.
//!
//! It reads `spin.toml`, serves the HTTP trigger's routes with one fresh
//! instance per request (Spin's isolation model), and provides the Spin
//! interfaces the components import. One module per concern:

pub mod app;
pub mod builder;
pub mod cli;
pub mod componentize;
pub mod console;
pub mod engine;
pub mod errors;
pub mod handles;
pub mod imports;
pub mod key_value;
pub mod loader;
pub mod logs;
pub mod manifest;
pub mod mqtt;
pub mod outbound;
pub mod outbound_redis;
pub mod p3;
pub mod p3_rc;
pub mod permit;
pub mod reuse;
pub mod routing;
pub mod runtime_config;
pub mod selective;
pub mod server;
pub mod sockets;
pub mod sqlite;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod variables;
pub mod workers;
