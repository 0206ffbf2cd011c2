//! The processor's two handlers; all the logic is edge-core's.

use edge_core::batch::process_batch;
use edge_core::input::{parse_batch, parse_item};
use edge_core::{AppError, Reply, Rule};

/// `POST /process`: one item.
pub fn one(body: &[u8], rule: &Rule, now: u64, request_id: &str) -> Result<Reply, AppError> {
    let item = parse_item(body)?;
    let outcome = rule.apply(&item, now)?;
    Ok(Reply::json(200, outcome.to_json(), request_id))
}

/// `POST /process/batch`: an array of items, each answered on its own. The
/// router has already enforced `max_batch_items`.
pub fn batch(body: &[u8], rule: &Rule, now: u64, request_id: &str) -> Result<Reply, AppError> {
    let items = parse_batch(body, usize::MAX)?;
    Ok(Reply::json(
        200,
        process_batch(&items, rule, now, request_id),
        request_id,
    ))
}
