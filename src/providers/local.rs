//! `data`: a kind with no cloud behind it (like Terraform's terraform_data).
//!
//! `input` (any value) comes back as `output`; `id` is random at create; a
//! change of `replace_on_change` forces a replacement. For tests and
//! benchmarks it can also wait (`delay`) and fail (`fail`) on create and
//! update, which is how the engine's failure and crash handling is exercised.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_schema, Ctx, Live, ProviderError, ReadRequest, ResourceKind, SchemaError};

/// The built-in `data` kind.
pub struct Data;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct DataConfig {
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    replace_on_change: Option<Value>,
    /// Wait this long in create and update (humantime, e.g. "200ms").
    #[serde(default)]
    delay: Option<String>,
    /// Fail create and update with this message.
    #[serde(default)]
    fail: Option<String>,
}

fn delay_of(config: &Value) -> Result<Option<Duration>, ProviderError> {
    match config.get("delay").and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => humantime::parse_duration(s)
            .map(Some)
            .map_err(|e| ProviderError::new(format!("delay {s:?} is not a duration: {e}"))),
    }
}

async fn act(config: &Value) -> Result<(), ProviderError> {
    if let Some(d) = delay_of(config)? {
        tokio::time::sleep(d).await;
    }
    if let Some(msg) = config.get("fail").and_then(Value::as_str) {
        return Err(ProviderError::new(msg.to_string()));
    }
    Ok(())
}

fn attributes(id: &str, config: &Value) -> Value {
    let mut attrs = config.as_object().cloned().unwrap_or_default();
    attrs.insert("id".into(), json!(id));
    attrs.insert("output".into(), config.get("input").cloned().unwrap_or(Value::Null));
    Value::Object(attrs)
}

#[async_trait]
impl ResourceKind for Data {
    fn name(&self) -> &'static str {
        "data"
    }

    fn config_schema(&self) -> Value {
        serde_json::to_value(schemars::schema_for!(DataConfig)).unwrap_or_default()
    }

    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<DataConfig>(config)?;
        if let Some(Value::String(s)) = config.get("delay") {
            if !s.contains("${") && humantime::parse_duration(s).is_err() {
                return Err(SchemaError::at(
                    vec![crate::path::PathSeg::Field("delay".into())],
                    format!("{s:?} is not a duration (write e.g. \"200ms\" or \"2s\")"),
                ));
            }
        }
        Ok(())
    }

    fn computed_attributes(&self) -> &'static [&'static str] {
        &["id", "output"]
    }

    fn force_new_fields(&self) -> &'static [&'static str] {
        &["replace_on_change"]
    }

    fn planned_attributes(&self, desired: &Value, prior: Option<&Value>) -> Value {
        let id = prior
            .and_then(|p| p.get("id"))
            .cloned()
            .unwrap_or_else(crate::value::unknown);
        let mut attrs = desired.as_object().cloned().unwrap_or_default();
        attrs.insert("id".into(), id);
        attrs.insert("output".into(), desired.get("input").cloned().unwrap_or(Value::Null));
        Value::Object(attrs)
    }

    async fn read_many(&self, _ctx: &Ctx, items: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        // Nothing lives outside the state: what the state holds is what exists.
        Ok(super::common::as_stored(items))
    }

    async fn create(&self, _ctx: &Ctx, _address: &str, config: &Value) -> Result<Live, ProviderError> {
        act(config).await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        Ok(Live {
            attributes: attributes(&id, config),
            id,
            inputs: config.clone(),
        })
    }

    async fn update(&self, _ctx: &Ctx, _address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        act(config).await?;
        Ok(Live {
            id: prior.id.clone(),
            inputs: config.clone(),
            attributes: attributes(&prior.id, config),
        })
    }

    async fn delete(&self, _ctx: &Ctx, _address: &str, _id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn find_owned(&self, _ctx: &Ctx, _address: &str) -> Result<Vec<Live>, ProviderError> {
        // A data object that never reached the state never existed anywhere.
        Ok(Vec::new())
    }
}
