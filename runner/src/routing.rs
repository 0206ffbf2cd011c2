//! Spin's HTTP routing rules (pure).
