//! The dependency graph of a stack's resources (petgraph): build it from
//! references and `depends_on`, report cycles with where each edge is written,
//! give a walk order, and render DOT.

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::stack::source::Span;
use crate::stack::{Stack, StackError, StackErrors};

/// Why one resource depends on another: the first place it says so.
#[derive(Debug, Clone)]
pub struct Edge {
    pub span: Span,
    /// `${...}` text, or `depends_on`.
    pub text: String,
}

/// Resources as nodes; an edge runs from a dependency to its dependent.
#[derive(Debug)]
pub struct Graph {
    pub g: DiGraph<String, Edge>,
    pub index: HashMap<String, NodeIndex>,
}

/// The text of an edge a kind adds beyond references (a namespaced object
/// after its namespace, a NAT gateway after its VPC's internet gateway).
pub const IMPLIED: &str = "implied by the kinds";

impl Graph {
    /// Build the graph of a validated stack, with `implied` the dependencies
    /// its kinds add beyond references (address -> dependencies); a cycle is
    /// an error naming every address on it.
    pub fn build(stack: &Stack, implied: &HashMap<String, Vec<String>>) -> Result<Graph, StackErrors> {
        let mut g = DiGraph::with_capacity(stack.resources.len(), stack.resources.len());
        let mut index = HashMap::with_capacity(stack.resources.len());
        for r in &stack.resources {
            index.insert(r.address.clone(), g.add_node(r.address.clone()));
        }
        for r in &stack.resources {
            let to = index[&r.address];
            let mut seen = HashSet::new();
            let implied = implied
                .get(&r.address)
                .into_iter()
                .flatten()
                .map(|d| (d.clone(), r.span.clone(), IMPLIED.to_string()));
            let sites = r
                .refs
                .iter()
                .filter_map(|s| {
                    s.reference
                        .address()
                        .map(|a| (a, s.span.clone(), format!("${{{}}}", s.text)))
                })
                .chain(
                    r.depends_on
                        .iter()
                        .map(|(a, sp)| (a.clone(), sp.clone(), "depends_on".to_string())),
                )
                .chain(implied);
            for (dep, span, text) in sites {
                if let Some(&from) = index.get(&dep) {
                    if seen.insert(from) {
                        g.add_edge(from, to, Edge { span, text });
                    }
                }
            }
        }
        let graph = Graph { g, index };
        graph.check_cycles(stack)?;
        Ok(graph)
    }

    fn check_cycles(&self, stack: &Stack) -> Result<(), StackErrors> {
        let mut errors = Vec::new();
        for scc in tarjan_scc(&self.g) {
            let self_loop = scc.len() == 1 && self.g.find_edge(scc[0], scc[0]).is_some();
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let cycle = self.find_cycle(&scc);
            let names: Vec<&str> = cycle.iter().map(|&n| self.g[n].as_str()).collect();
            let mut lines = Vec::new();
            // Walk the cycle as "a refers to b": edges run dependency -> dependent.
            for i in 0..cycle.len() {
                let dependent = cycle[(i + 1) % cycle.len()];
                let dependency = cycle[i];
                if let Some(e) = self.g.find_edge(dependency, dependent) {
                    let edge = &self.g[e];
                    lines.push(format!(
                        "  {} refers to {} at {} ({})",
                        self.g[dependent],
                        self.g[dependency],
                        stack.sources.locate(&edge.span),
                        edge.text
                    ));
                }
            }
            lines.reverse();
            let first = self
                .g
                .find_edge(cycle[0], cycle[1 % cycle.len()])
                .map(|e| self.g[e].span.clone());
            errors.push(
                StackError::new(
                    first.map(|s| stack.sources.locate(&s)),
                    format!("dependency cycle between {}:\n{}", names.join(", "), lines.join("\n")),
                )
                .with_help("break the cycle: one of these references must go, or point elsewhere"),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(StackErrors(errors))
        }
    }

    /// One cycle inside a strongly connected component, as nodes in edge order.
    fn find_cycle(&self, scc: &[NodeIndex]) -> Vec<NodeIndex> {
        let members: HashSet<NodeIndex> = scc.iter().copied().collect();
        let start = *scc.iter().min_by_key(|n| &self.g[**n]).unwrap_or(&scc[0]);
        // Shortest path start -> ... -> start inside the component (BFS).
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for e in self.g.edges(n) {
                let t = e.target();
                if !members.contains(&t) {
                    continue;
                }
                if t == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(v) = prev.entry(t) {
                    v.insert(n);
                    queue.push_back(t);
                }
            }
        }
        scc.to_vec()
    }

    /// Addresses with every dependency before its dependents.
    pub fn order(&self) -> Vec<String> {
        match petgraph::algo::toposort(&self.g, None) {
            Ok(nodes) => nodes.into_iter().map(|n| self.g[n].clone()).collect(),
            Err(_) => Vec::new(), // unreachable: build() refuses cycles
        }
    }

    /// The addresses `address` depends on directly, sorted.
    pub fn dependencies(&self, address: &str) -> Vec<String> {
        let Some(&n) = self.index.get(address) else {
            return Vec::new();
        };
        let mut deps: Vec<String> = self
            .g
            .neighbors_directed(n, petgraph::Direction::Incoming)
            .map(|d| self.g[d].clone())
            .collect();
        deps.sort();
        deps
    }

    /// The graph in Graphviz DOT, an edge pointing from a resource to what it depends on.
    pub fn to_dot(&self, name: &str) -> String {
        let mut s = format!("digraph {} {{\n  rankdir = \"RL\";\n", quote(name));
        let mut nodes: Vec<&String> = self.g.node_weights().collect();
        nodes.sort();
        for n in nodes {
            s.push_str(&format!("  {};\n", quote(n)));
        }
        let mut edges: Vec<(String, String, bool)> = self
            .g
            .edge_references()
            .map(|e| {
                let implied = e.weight().text == IMPLIED;
                (self.g[e.target()].clone(), self.g[e.source()].clone(), implied)
            })
            .collect();
        edges.sort();
        for (a, b, implied) in edges {
            // Dashed: an order AWS or Kubernetes needs that no reference writes.
            let style = if implied { " [style = \"dashed\"]" } else { "" };
            s.push_str(&format!("  {} -> {}{style};\n", quote(&a), quote(&b)));
        }
        s.push_str("}\n");
        s
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
