//! slipway: infrastructure as code for AWS EKS stacks, with a state file.
//!
//! Data flows one way: stack -> graph -> plan -> apply -> state. Providers know
//! nothing of the CLI; the CLI (in `commands`) knows nothing of cloud types.

pub mod apply;
pub mod commands;
pub mod graph;
pub mod import;
pub mod lookup;
pub mod operator;
pub mod path;
pub mod plan;
pub mod providers;
pub mod sensitive;
pub mod stack;
pub mod state;
pub mod value;
pub mod yaml;
