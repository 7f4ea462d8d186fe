//! `slipway validate DIR`: parse, check schemas and references, build the graph.

use std::path::Path;

use super::{check_region, Exit};
use crate::providers::Registry;

/// Validate needs no variable values (as Terraform's): a required variable
/// without one is unknown here, and only `plan` asks for it. Values given
/// with --var are checked against their declarations all the same.
pub async fn run(dir: &Path, vars: &[String], registry: &Registry) -> Exit {
    let cli_vars = crate::stack::variables::parse_cli_vars(vars)?;
    let mut stack = crate::stack::load::load(dir)?;
    if stack.modules.is_empty() {
        crate::stack::validate::validate(&stack, registry)?;
    }
    // Given values are checked (names, types); missing ones are unknown.
    let variables = crate::stack::variables::resolve_with(&stack, &cli_vars, &|k| std::env::var(k).ok(), true)?;
    if !stack.modules.is_empty() {
        crate::stack::module::expand(&mut stack, &variables)?;
        crate::stack::validate::validate(&stack, registry)?;
    }
    crate::providers::common::name_moves(&stack.moved_pairs());
    let graph = crate::graph::Graph::build(&stack, &registry.implied_edges(&stack))?;
    check_region(&stack, registry).await?;
    println!(
        "Success! Stack `{}` is valid: {} resources, {} dependencies.",
        stack.name,
        stack.resources.len(),
        graph.g.edge_count()
    );
    Ok(0)
}
