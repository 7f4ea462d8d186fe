//! `k8s_check`: a post-deploy check of any Service (one an `app` does not
//! render: a `k8s_manifest`'s, or one another team runs), sent the way an
//! `app.check` is, through the API server's service proxy, so CI needs no
//! network path to the pods. It makes nothing in the cluster: it runs when
//! it is created and whenever its config changes, which `triggers` (any
//! values, e.g. `["${var.image_tag}"]`) makes happen on each deploy.
//!
//! ```toml
//! [k8s_check.api]
//! cluster = "${eks_cluster.main.connection}"
//! namespace = "api"
//! service = "api"
//! port = 8080
//! path = "/healthz"
//! expect_status = 200
//! timeout = "60s"
//! triggers = ["${var.image_tag}"]
//! ```

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::check::{probe, service_proxy_path, validate_request};
use super::client::target;
use super::schema::field;
use crate::providers::{
    check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError, StackIssue, StackView,
};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CheckConfig {
    #[schemars(with = "Option<String>")]
    #[serde(default)]
    cluster: Option<Value>,
    namespace: String,
    service: String,
    /// The Service's port: a number or the port's name.
    #[serde(default = "eighty")]
    port: Value,
    path: String,
    #[serde(default = "ok_status")]
    expect_status: u16,
    #[serde(default = "sixty_seconds")]
    timeout: String,
    /// Anything whose change should run the check again.
    #[serde(default)]
    triggers: Option<Value>,
}

fn eighty() -> Value {
    json!(80)
}

fn ok_status() -> u16 {
    200
}

fn sixty_seconds() -> String {
    "60s".into()
}

pub struct K8sCheck;

impl K8sCheck {
    async fn run(&self, ctx: &Ctx, config: &Value) -> Result<Live, ProviderError> {
        let c: CheckConfig = serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(e.to_string()))?;
        let port = match &c.port {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let url = service_proxy_path(&c.namespace, &c.service, &port, &c.path);
        let t = target(ctx, config)?;
        probe(ctx, &t, &url, &c.path, c.expect_status, &c.timeout).await?;
        let id = format!("{}/{}:{port}{}", c.namespace, c.service, c.path);
        let inputs = self.complete("", "", config);
        let attributes = crate::providers::common::with_attrs(&inputs, json!({ "id": id }));
        Ok(Live { id, inputs, attributes })
    }
}

#[async_trait]
impl ResourceKind for K8sCheck {
    fn name(&self) -> &'static str {
        "k8s_check"
    }

    fn aws_permissions(&self) -> Option<crate::providers::aws::permissions::Permissions> {
        // The cluster's endpoint and CA, as for every Kubernetes kind.
        Some(crate::providers::aws::permissions::Permissions {
            read: &["eks:DescribeCluster"],
            ..crate::providers::aws::permissions::Permissions::NONE
        })
    }

    fn config_schema(&self) -> Value {
        serde_json::to_value(schemars::schema_for!(CheckConfig)).unwrap_or_default()
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<CheckConfig>(config)?;
        let c: CheckConfig =
            serde_json::from_value(config.clone()).map_err(|e| SchemaError::at(vec![], e.to_string()))?;
        if !(c.port.is_u64() || c.port.as_str().is_some_and(|s| !s.is_empty())) {
            return Err(SchemaError::at(vec![field("port")], "a port number or the port's name"));
        }
        validate_request(&c.path, c.expect_status, &c.timeout, |f| vec![field(f)])
    }

    fn complete(&self, _stack: &str, _address: &str, config: &Value) -> Value {
        let mut out = config.clone();
        if let Some(o) = out.as_object_mut() {
            o.entry("port").or_insert_with(eighty);
            o.entry("expect_status").or_insert_with(|| json!(200));
            o.entry("timeout").or_insert_with(|| json!("60s"));
        }
        out
    }

    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        // The same rule as every Kubernetes kind: only this stack's clusters.
        view.resources
            .iter()
            .filter(|(_, k, _)| *k == self.name())
            .filter_map(|(address, _, config)| {
                let why = super::kind::untrusted_cluster(config.get("cluster")?, view)?;
                Some(StackIssue {
                    address: address.to_string(),
                    path: vec![field("cluster")],
                    message: why,
                })
            })
            .collect()
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id"]
    }

    fn implied_dependencies(&self, config: &Value, view: &StackView<'_>) -> Vec<String> {
        // After whatever in the stack renders that Service.
        let (Some(ns), Some(svc)) = (
            config.get("namespace").and_then(Value::as_str),
            config.get("service").and_then(Value::as_str),
        ) else {
            return Vec::new();
        };
        view.resources
            .iter()
            .filter(|(address, kind, c)| match *kind {
                "app" | "k8s_service" => {
                    let name = c
                        .get("name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| super::render::k8s_name(address));
                    c.get("namespace").and_then(Value::as_str).unwrap_or("default") == ns && name == svc
                }
                "k8s_manifest" => c.get("manifest").is_some_and(|m| {
                    m.get("kind").and_then(Value::as_str) == Some("Service")
                        && m.pointer("/metadata/name").and_then(Value::as_str) == Some(svc)
                        && m.pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .unwrap_or("default")
                            == ns
                }),
                _ => false,
            })
            .map(|(address, _, _)| address.to_string())
            .collect()
    }

    /// Nothing lives in the cluster: what was checked stays as it was.
    async fn read_many(&self, _ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        Ok(crate::providers::common::as_stored(reqs))
    }

    async fn create(&self, ctx: &Ctx, _address: &str, config: &Value) -> Result<Live, ProviderError> {
        self.run(ctx, config).await
    }

    async fn update(&self, ctx: &Ctx, _address: &str, _prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        self.run(ctx, config).await
    }

    async fn delete(&self, _ctx: &Ctx, _address: &str, _id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn find_owned(&self, _ctx: &Ctx, _address: &str) -> Result<Vec<Live>, ProviderError> {
        Ok(Vec::new())
    }
}
