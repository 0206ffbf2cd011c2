//! Integration tests: the real components served by edge-runner over real
//! sockets. One binary, one module per feature; see helpers.rs.

mod helpers;
mod deploy;
mod runner;
