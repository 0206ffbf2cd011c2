//! The runtime configuration file (Spin's runtime-config.toml).
