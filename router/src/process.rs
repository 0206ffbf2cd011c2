//! The processing routes.

use edge_core::cache_key::process_digest;
use edge_core::chain::{self as decide, Lookup, Processed};
use edge_core::input::{parse_batch, parse_item};
use edge_core::internal::{
    CACHE_HOST, CacheOutcome, ENTRIES_PATH, PROCESS_BATCH_PATH, PROCESS_PATH, PROCESSOR_HOST,
};
use edge_core::{AppError, Reply};
use spin_sdk::http::Method;

use crate::chain::{Answer, call};
use crate::host::{self, Body, Ctx};

/// `POST /api/process`: one item, cached by input and rule.
pub fn one(req: &mut Body, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    let config = host::config(rid)?;
    let body = host::json_body(req, ctx, config.max_body_bytes)?;
    let item = parse_item(&body)?;

    let entry = format!("{ENTRIES_PATH}/{}", process_digest(&item, &config.rule));
    let lookup = decide::lookup(
        call(Method::Get, CACHE_HOST, &entry, None, rid).map(Answer::status_and_body),
    );
    if let Lookup::Hit(stored) = lookup {
        return Ok(Reply::json(200, stored, rid).with_cache(CacheOutcome::Hit));
    }

    let input = item.to_json();
    let answer = call(
        Method::Post,
        PROCESSOR_HOST,
        PROCESS_PATH,
        Some(input.as_bytes()),
        rid,
    );
    match processed(answer, rid)? {
        Processed::Ok(answer) => {
            let stored = lookup == Lookup::Miss
                && decide::stored(
                    call(Method::Put, CACHE_HOST, &entry, Some(&answer), rid).map(|a| a.status),
                );
            let outcome = decide::computed_outcome(&lookup, stored);
            if outcome == CacheOutcome::Bypass {
                eprintln!(
                    "router: request_id={rid} cache unavailable, answer not cached (x-cache: bypass)"
                );
            }
            Ok(Reply::json(200, answer, rid).with_cache(outcome))
        }
        Processed::Rejected(status, error) => Ok(Reply::json(status, error, rid)),
    }
}

/// `POST /api/process/batch`: validated here (shape and size), processed
/// item by item by the processor; not cached.
pub fn batch(req: &mut Body, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    let config = host::config(rid)?;
    let body = host::json_body(req, ctx, config.max_body_bytes)?;
    parse_batch(&body, config.max_batch_items)?;

    let answer = call(
        Method::Post,
        PROCESSOR_HOST,
        PROCESS_BATCH_PATH,
        Some(&body),
        rid,
    );
    match processed(answer, rid)? {
        Processed::Ok(answers) => Ok(Reply::json(200, answers, rid)),
        Processed::Rejected(status, error) => Ok(Reply::json(status, error, rid)),
    }
}

fn processed(answer: Option<Answer>, rid: &str) -> Result<Processed, AppError> {
    decide::processed(answer.map(Answer::status_and_body)).map_err(|reason| {
        eprintln!("router: request_id={rid} {reason}");
        AppError::Internal
    })
}
