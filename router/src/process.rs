//! The processing routes.

use edge_core::cache_key::process_digest;
use edge_core::chain::{self as decide, Entry, Processed};
use edge_core::input::{parse_batch, parse_item};
use edge_core::internal::{
    CACHE_HOST, CacheOutcome, ENTRIES_PATH, ITEM_HEADER, PROCESS_BATCH_PATH, PROCESS_PATH,
    PROCESSOR_HOST, encode_item,
};
use edge_core::{AppError, Reply};
use spin_sdk::http::Method;

use crate::chain::{Answer, Call, call};
use crate::host::{self, Body, Ctx};

/// `POST /api/process`: one item, cached by input and rule. One chained
/// call: the cache's `POST /entries/{digest}` (the item in a header, no
/// body) answers the stored copy, or asks the processor, stores and answers
/// (`edge_core::internal`).
pub fn one(req: &mut Body, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    let rule = host::rule(rid)?;
    let body = host::json_body(req, ctx, host::max_body_bytes(rid)?)?;
    let item = parse_item(&body)?;
    drop(body);

    let entry = format!("{ENTRIES_PATH}/{}", process_digest(&item, &rule));
    let input = item.to_json();
    let header = encode_item(&input);
    let request = Call {
        method: Method::Post,
        host: CACHE_HOST,
        path: &entry,
        header: Some((ITEM_HEADER, header.as_bytes())),
        body: None,
    };
    let answer = edge_glue::chain::call("router", request, rid);
    match decide::entry(answer.map(Answer::into_parts)) {
        Entry::Answer(answer, outcome) => {
            if outcome == CacheOutcome::Bypass {
                bypassed(rid);
            }
            Ok(Reply::json(200, answer, rid).with_cache(outcome))
        }
        Entry::Rejected(status, error) => Ok(Reply::json(status, error, rid)),
        Entry::ProcessorFailed => {
            eprintln!("router: request_id={rid} the processor failed behind the cache");
            Err(AppError::Internal)
        }
        // The cache itself failed: the answer is still computed, uncached.
        Entry::Unavailable => {
            let answer = call(
                Method::Post,
                PROCESSOR_HOST,
                PROCESS_PATH,
                Some(input.as_bytes()),
                rid,
            );
            match processed(answer, rid)? {
                Processed::Ok(answer) => {
                    bypassed(rid);
                    Ok(Reply::json(200, answer, rid).with_cache(CacheOutcome::Bypass))
                }
                Processed::Rejected(status, error) => Ok(Reply::json(status, error, rid)),
            }
        }
    }
}

fn bypassed(rid: &str) {
    eprintln!("router: request_id={rid} cache unavailable, answer not cached (x-cache: bypass)");
}

/// `POST /api/process/batch`: validated here (shape and size), processed
/// item by item by the processor; not cached.
pub fn batch(req: &mut Body, ctx: &Ctx) -> Result<Reply, AppError> {
    let rid = ctx.request_id.as_str();
    let body = host::json_body(req, ctx, host::max_body_bytes(rid)?)?;
    parse_batch(&body, host::max_batch_items(rid)?)?;

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
