//! Every integration test, in one binary: the AWS SDK and kube are linked
//! once instead of once per file (CI builds in minutes, not tens of them).
//! Each module is what was one `tests/NAME.rs`; `cargo test --test it NAME::`
//! runs one of them.

#[path = "../support/mod.rs"]
mod support;

mod aws_dns_tls;
mod aws_eks;
mod aws_import;
mod aws_network;
mod aws_validation;
mod blog;
mod drift;
mod ecosystem;
mod eksctl_import;
mod engine;
mod faults;
mod iam_policy;
mod k8s;
mod k8s_ownership;
mod language;
mod merge_request;
mod modules;
mod ownership;
mod refusals;
mod s3_state;
mod stack_errors;
