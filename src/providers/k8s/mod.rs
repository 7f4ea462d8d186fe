//! Kubernetes kinds, in the same graph as the cluster they run on.

pub mod client;
pub mod kinds;
pub mod rollout;
