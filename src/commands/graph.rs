//! `slipway graph DIR`: the dependency graph as Graphviz DOT on stdout.

use std::path::Path;

use super::{load_stack, Exit};
use crate::providers::Registry;

pub fn run(dir: &Path, vars: &[String], registry: &Registry) -> Exit {
    let l = load_stack(dir, vars, registry)?;
    print!("{}", l.graph.to_dot(&l.stack.name));
    Ok(0)
}
