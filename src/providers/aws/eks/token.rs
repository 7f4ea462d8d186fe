//! Native EKS authentication: a presigned STS GetCallerIdentity URL with the
//! cluster name in the signed `x-k8s-aws-id` header, valid 60 seconds,
//! encoded as `k8s-aws-v1.` + base64url without padding - the token
//! `aws eks get-token` makes, without the AWS CLI or aws-iam-authenticator.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;

/// The prefix EKS expects on a token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// How long a token is accepted after it is made (EKS allows 15 minutes; the
/// presigned URL itself expires after 60 seconds of clock skew allowance).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The DNS suffix of a region's partition (aws, aws-cn, aws-us-gov, the ISO
/// partitions): where its STS lives.
pub fn dns_suffix(region: &str) -> &'static str {
    match crate::providers::aws::permissions::partition(region) {
        "aws-cn" => "amazonaws.com.cn",
        "aws-iso-b" => "sc2s.sgov.gov",
        "aws-iso" => "c2s.ic.gov",
        // aws and aws-us-gov
        _ => "amazonaws.com",
    }
}

/// The presigned STS URL for `cluster` in `region`, signed at `time`.
pub fn presigned_url(cluster: &str, region: &str, creds: &Credentials, time: SystemTime) -> Result<String, String> {
    if region.is_empty() {
        return Err("no AWS region for the EKS token: set `[stack] region` or AWS_REGION".into());
    }
    let host = format!("sts.{region}.{}", dns_suffix(region));
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity: Identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the token request: {e}"))?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let request = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("cannot sign the token request: {e}"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| format!("cannot sign the token request: {e}"))?
        .into_parts();
    let (_, query) = instructions.into_parts();
    let mut signed = url;
    for (k, v) in query {
        signed.push('&');
        signed.push_str(&encode_query(k));
        signed.push('=');
        signed.push_str(&encode_query(&v));
    }
    Ok(signed)
}

/// A bearer token for `cluster`.
pub fn token(cluster: &str, region: &str, creds: &Credentials, time: SystemTime) -> Result<String, String> {
    let url = presigned_url(cluster, region, creds, time)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

/// The ExecCredential document kubectl's exec plugin protocol expects.
pub fn exec_credential(token: &str, now: SystemTime) -> serde_json::Value {
    let expires = humantime::format_rfc3339_seconds(now + TOKEN_LIFETIME).to_string();
    serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {},
        "status": { "expirationTimestamp": expires, "token": token }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        let b64 = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert!(!b64.contains('='), "no padding");
        assert!(!b64.contains('+') && !b64.contains('/'), "base64url alphabet");
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
    }

    fn query(url: &str) -> Vec<(String, String)> {
        url.split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        // 2026-01-02T03:04:05Z
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_323_045);
        let tok = token("blog", "eu-west-1", &creds, t).unwrap();
        let url = decode(&tok);
        assert!(url.starts_with("https://sts.eu-west-1.amazonaws.com/?"), "{url}");
        let cn = presigned_url("c", "cn-north-1", &creds, t).unwrap();
        assert!(cn.starts_with("https://sts.cn-north-1.amazonaws.com.cn/?"), "{cn}");
        let gov = presigned_url("c", "us-gov-west-1", &creds, t).unwrap();
        assert!(gov.starts_with("https://sts.us-gov-west-1.amazonaws.com/?"), "{gov}");
        assert!(
            presigned_url("c", "", &creds, t).is_err(),
            "never an empty region in a token"
        );
        let q = query(&url);
        let get = |k: &str| {
            q.iter()
                .find(|(qk, _)| qk == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} in {url}"))
        };
        assert_eq!(get("Action"), "GetCallerIdentity");
        assert_eq!(get("Version"), "2011-06-15");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(get("X-Amz-Expires"), "60");
        assert_eq!(get("X-Amz-Date"), "20260102T030405Z");
        assert_eq!(
            get("X-Amz-Credential"),
            "AKIDEXAMPLE%2F20260102%2Feu-west-1%2Fsts%2Faws4_request"
        );
        assert_eq!(get("X-Amz-SignedHeaders"), "host%3Bx-k8s-aws-id");
        assert_eq!(get("X-Amz-Signature").len(), 64);
        // Same inputs, same token; another cluster, another signature.
        assert_eq!(tok, token("blog", "eu-west-1", &creds, t).unwrap());
        assert_ne!(tok, token("other", "eu-west-1", &creds, t).unwrap());
    }

    #[test]
    fn session_credentials_carry_their_token() {
        let creds = Credentials::new("ASIA", "secret", Some("sess/ion+tok".into()), None, "test");
        let url = decode(&token("c", "us-east-1", &creds, SystemTime::now()).unwrap());
        assert!(url.contains("X-Amz-Security-Token=sess%2Fion%2Btok"), "{url}");
    }

    #[test]
    fn exec_credential_has_the_kubectl_shape() {
        let v = exec_credential("k8s-aws-v1.abc", SystemTime::UNIX_EPOCH);
        assert_eq!(v["kind"], "ExecCredential");
        assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
        assert_eq!(v["status"]["token"], "k8s-aws-v1.abc");
        assert_eq!(v["status"]["expirationTimestamp"], "1970-01-01T00:14:00Z");
    }
}

/// A token for `cluster` with credentials from the standard AWS chain,
/// optionally after assuming `role_arn`; returns the ExecCredential JSON.
pub async fn exec_credential_for(
    cluster: &str,
    region: Option<String>,
    role_arn: Option<String>,
) -> Result<serde_json::Value, String> {
    use aws_credential_types::provider::ProvideCredentials;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    let conf = loader.load().await;
    let region = conf
        .region()
        .map(|r| r.to_string())
        .ok_or("no AWS region: pass --region or set AWS_REGION")?;
    let creds = match role_arn {
        Some(arn) => {
            let p = aws_config::sts::AssumeRoleProvider::builder(arn.clone())
                .session_name("slipway-eks-token")
                .configure(&conf)
                .build()
                .await;
            p.provide_credentials()
                .await
                .map_err(|e| format!("cannot assume {arn}: {e}"))?
        }
        None => conf
            .credentials_provider()
            .ok_or("no AWS credentials in the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, web identity, ...)")?
            .provide_credentials()
            .await
            .map_err(|e| format!("cannot load AWS credentials: {e}"))?,
    };
    let now = SystemTime::now();
    let tok = token(cluster, &region, &creds, now)?;
    Ok(exec_credential(&tok, now))
}
