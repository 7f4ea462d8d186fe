//! Kubernetes kinds, in the same graph as the cluster they run on.

pub mod added;
pub mod check;
pub mod check_kind;
pub mod client;
pub mod kind;
pub mod project;
pub mod render;
pub mod rollout;
pub mod rules;
pub mod schema;
pub mod table;
