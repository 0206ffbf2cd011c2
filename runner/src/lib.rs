//! edge-runner: a Spin-compatible host for edge-processor, on wasmtime.
//!
//! It reads `spin.toml`, serves the HTTP trigger's routes with one fresh
//! instance per request (Spin's isolation model), and provides the Spin
//! interfaces the components import. One module per concern:

pub mod key_value;
pub mod routing;
pub mod runtime_config;
pub mod variables;
