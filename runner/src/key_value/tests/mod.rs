//! Tests for the key-value module: one behavioural suite run on every
//! backend, then each backend's own concerns, the store table and the host.

mod host;
mod redis;
mod sqlite;
mod stores;
mod suite;
