//! `slipway validate DIR`: parse, check schemas and references, build the graph.

use std::path::Path;

use super::{check_region, load_stack, Exit};
use crate::providers::Registry;

pub async fn run(dir: &Path, vars: &[String], registry: &Registry) -> Exit {
    let l = load_stack(dir, vars, registry)?;
    check_region(&l.stack, registry).await?;
    println!(
        "Success! Stack `{}` is valid: {} resources, {} dependencies.",
        l.stack.name,
        l.stack.resources.len(),
        l.graph.g.edge_count()
    );
    Ok(0)
}
