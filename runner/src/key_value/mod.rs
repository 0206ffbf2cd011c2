//! Spin's key-value store: backend trait, SQLite and Redis backends.
