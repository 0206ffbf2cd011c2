//! spin.toml and deploy/ checked against upstream schemas (placeholder).
