//! Post-deploy checks: after an `app` rolls out, a GET through the API
//! server's service proxy (`/api/v1/namespaces/NS/services/NAME:80/proxy/PATH`),
//! so CI needs no network path to the pods, retried until it answers the
//! expected status or its timeout passes. A failure shows what the app
//! answered (secrets redacted, cut to 300 characters).

use serde_json::Value;

use super::client;
use super::schema::AppCheck;
use crate::path::PathSeg;
use crate::providers::wait::{wait_for, Check, Policy};
use crate::providers::{Ctx, ProviderError, SchemaError};

/// What a check config must be before any call.
pub fn validate(c: &Value) -> Result<(), SchemaError> {
    let Ok(check) = serde_json::from_value::<AppCheck>(c.clone()) else {
        return Ok(()); // the schema check names the field
    };
    validate_request(&check.path, check.expect_status, &check.timeout, |f| {
        vec![PathSeg::Field("check".into()), PathSeg::Field(f.into())]
    })?;
    if !["fail", "rollback"].contains(&check.on_failure.as_str()) {
        return Err(SchemaError::at(
            vec![PathSeg::Field("check".into()), PathSeg::Field("on_failure".into())],
            "\"fail\" or \"rollback\"",
        ));
    }
    Ok(())
}

/// A request's path, expected status and timeout, as an `app.check` and a
/// `k8s_check` both take them.
pub fn validate_request(
    path: &str,
    expect_status: u16,
    timeout: &str,
    at: impl Fn(&str) -> Vec<PathSeg>,
) -> Result<(), SchemaError> {
    if !path.starts_with('/') && !path.contains("${") {
        return Err(SchemaError::at(
            at("path"),
            format!("{path:?} is not a path: start it with /"),
        ));
    }
    if !(100..=599).contains(&expect_status) {
        return Err(SchemaError::at(at("expect_status"), "an HTTP status is 100-599"));
    }
    if humantime::parse_duration(timeout).is_err() {
        return Err(SchemaError::at(
            at("timeout"),
            format!("{timeout:?} is not a duration: write e.g. 30s or 2m"),
        ));
    }
    Ok(())
}

/// The service proxy's path for a GET of `path` on port `port` of a Service.
pub fn service_proxy_path(ns: &str, service: &str, port: &str, path: &str) -> String {
    format!("/api/v1/namespaces/{ns}/services/{service}:{port}/proxy{path}")
}

/// The proxy path of the check's request to the Service among `objs`.
pub fn proxy_path(objs: &[Value], path: &str) -> Option<String> {
    let svc = objs
        .iter()
        .find(|o| o.get("kind").and_then(Value::as_str) == Some("Service"))?;
    let ns = svc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let name = svc.pointer("/metadata/name").and_then(Value::as_str)?;
    let port = svc.pointer("/spec/ports/0/port").and_then(Value::as_i64).unwrap_or(80);
    Some(service_proxy_path(ns, name, &port.to_string(), path))
}

/// Make the check's request until it answers as expected; else the error.
pub async fn run(ctx: &Ctx, target: &client::Target, objs: &[Value], config: &Value) -> Result<(), ProviderError> {
    let check: AppCheck =
        serde_json::from_value(config.clone()).map_err(|e| ProviderError::new(format!("check: {e}")))?;
    let url = proxy_path(objs, &check.path)
        .ok_or_else(|| ProviderError::new("check: the app renders no Service to send the request through"))?;
    probe(ctx, target, &url, &check.path, check.expect_status, &check.timeout).await
}

/// GET `url` (a service proxy path) until it answers `expect_status` (any
/// 2xx when that is 2xx) or `timeout` passes; the error shows the last answer.
pub async fn probe(
    ctx: &Ctx,
    target: &client::Target,
    url: &str,
    path: &str,
    expect_status: u16,
    timeout: &str,
) -> Result<(), ProviderError> {
    let check = Probe { path, expect_status };
    let timeout = humantime::parse_duration(timeout).unwrap_or(std::time::Duration::from_secs(60));
    let policy = Policy {
        timeout,
        first: std::time::Duration::from_millis(500),
        max: std::time::Duration::from_secs(5),
    };
    let what = format!(
        "the post-deploy check GET {} to answer {}",
        check.path, check.expect_status
    );
    wait_for(&what, policy, || async {
        let client = client::client_without_retry(ctx, target).await?;
        let request = http::Request::get(url)
            .body(Vec::new())
            .map_err(|e| ProviderError::new(format!("check: {e}")))?;
        let (status, body) = match client.request_text(request).await {
            Ok(text) => (200, text),
            Err(kube::Error::Api(s)) => (s.code, s.message.clone()),
            Err(e) => (0, e.to_string()),
        };
        let ok = if (200..300).contains(&check.expect_status) {
            (200..300).contains(&status)
        } else {
            status == check.expect_status
        };
        Ok::<_, ProviderError>(if ok {
            Check::Done(())
        } else {
            let shown: String = crate::sensitive::redact(body.trim()).chars().take(300).collect();
            Check::Pending(format!("HTTP {status}: {shown}"))
        })
    })
    .await
    .map_err(|e| ProviderError::new(format!("post-deploy check failed: {}", e.message)))
}

struct Probe<'a> {
    path: &'a str,
    expect_status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_request_goes_through_the_services_proxy() {
        let objs = [
            json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "a"}}),
            json!({"kind": "Service", "metadata": {"name": "web", "namespace": "a"}, "spec": {"ports": [{"port": 80}]}}),
        ];
        assert_eq!(
            proxy_path(&objs, "/healthz").unwrap(),
            "/api/v1/namespaces/a/services/web:80/proxy/healthz"
        );
    }

    #[test]
    fn bad_checks_are_refused_before_any_call() {
        assert!(validate(&json!({"path": "healthz"})).is_err());
        assert!(validate(&json!({"path": "/h", "timeout": "soon"})).is_err());
        assert!(validate(&json!({"path": "/h", "on_failure": "pray"})).is_err());
        assert!(validate(&json!({"path": "/h", "expect_status": 42})).is_err());
        assert!(validate(&json!({"path": "/h", "on_failure": "rollback"})).is_ok());
    }
}
