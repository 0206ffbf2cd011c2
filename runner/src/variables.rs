//! Spin application variables: templates and providers (pure).
