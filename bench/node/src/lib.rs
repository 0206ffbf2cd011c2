//! The core Wasm module of the Node baseline (the seed's design): plain
//! exported functions over linear memory, no component model, no WASI. The
//! host (bench/node/server.mjs) does the HTTP, the routing and the cache;
//! this module parses, validates, keys and applies the rule with edge-core,
//! the same library the components use.
//!
//! Calling convention: the host asks for an input buffer
//! ([`input_buffer`]), writes the body followed by the request id there,
//! calls an entry point with both lengths, and reads the answer (JSON or a
//! cache key) from [`out_ptr`]/[`out_len`]. Entry points return the HTTP
//! status; a status other than 200 means the output is the error JSON.

use std::cell::RefCell;

use edge_core::batch::process_batch;
use edge_core::cache_key::process_digest;
use edge_core::input::{parse_batch, parse_item};
use edge_core::{AppError, Item, Rule};

/// The rule at its defaults (threshold 100, multiplier 2), like the app
/// without variable overrides.
fn rule() -> Rule {
    edge_core::config::rule_from(|_| None).expect("defaults are valid")
}

#[derive(Default)]
struct State {
    input: Vec<u8>,
    output: Vec<u8>,
    /// The item and request id of the last successful [`parse`], for
    /// [`apply`].
    item: Option<(Item, String)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// A buffer of at least `len` bytes for the host to write the input into.
#[unsafe(no_mangle)]
pub extern "C" fn input_buffer(len: u32) -> *mut u8 {
    STATE.with_borrow_mut(|s| {
        s.input.resize(len as usize, 0);
        s.input.as_mut_ptr()
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn out_ptr() -> *const u8 {
    STATE.with_borrow(|s| s.output.as_ptr())
}

#[unsafe(no_mangle)]
pub extern "C" fn out_len() -> u32 {
    STATE.with_borrow(|s| s.output.len() as u32)
}

/// Parses `POST /api/process`'s body. 200: the output is the cache key
/// (64 hex chars) and the item is kept for [`apply`]; otherwise the error.
#[unsafe(no_mangle)]
pub extern "C" fn parse(body_len: u32, rid_len: u32) -> u32 {
    STATE.with_borrow_mut(|s| {
        let (body, rid) = split(&s.input, body_len, rid_len);
        match parse_item(body) {
            Ok(item) => {
                s.output = process_digest(&item, &rule()).into_bytes();
                s.item = Some((item, rid.to_owned()));
                200
            }
            Err(e) => {
                s.output = e.to_json(rid).into_bytes();
                s.item = None;
                e.status() as u32
            }
        }
    })
}

/// Applies the rule to the last parsed item at `now` (unix seconds). 200:
/// the output is the answer's JSON; otherwise the error.
#[unsafe(no_mangle)]
pub extern "C" fn apply(now: f64) -> u32 {
    STATE.with_borrow_mut(|s| {
        let (answer, rid) = match s.item.take() {
            Some((item, rid)) => (rule().apply(&item, now as u64), rid),
            None => (Err(AppError::Internal), String::new()),
        };
        let (status, output) = match answer {
            Ok(outcome) => (200, outcome.to_json()),
            Err(e) => (e.status() as u32, e.to_json(&rid)),
        };
        s.output = output.into_bytes();
        status
    })
}

/// `POST /api/process/batch`: at most `max_items` items, each answered on
/// its own. 200: the output is the array; otherwise the error.
#[unsafe(no_mangle)]
pub extern "C" fn batch(body_len: u32, rid_len: u32, now: f64, max_items: u32) -> u32 {
    STATE.with_borrow_mut(|s| {
        let (body, rid) = split(&s.input, body_len, rid_len);
        let (status, output) = match parse_batch(body, max_items as usize) {
            Ok(items) => (200, process_batch(&items, &rule(), now as u64, rid)),
            Err(e) => (e.status() as u32, e.to_json(rid)),
        };
        s.output = output.into_bytes();
        status
    })
}

/// The body and the request id laid out one after the other in the input.
fn split(input: &[u8], body_len: u32, rid_len: u32) -> (&[u8], &str) {
    let (body, rest) = input.split_at(body_len as usize);
    let rid = std::str::from_utf8(&rest[..rid_len as usize]).unwrap_or("");
    (body, rid)
}
