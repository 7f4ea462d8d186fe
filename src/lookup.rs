//! Lookups of what exists and is not the stack's (Terraform's data
//! sources): `[lookup.KIND.NAME]`, read at plan time, read as
//! `${lookup.KIND.NAME.ATTRIBUTE}`, never owned, never changed, never in the
//! state as resources. The plan carries what they read, so `apply PLAN`
//! uses the same values.
//!
//! | kind | fields | attributes |
//! |---|---|---|
//! | `caller_identity` | none | `account_id`, `arn`, `user_id`, `partition` |
//! | `region` | none | `name` |
//! | `availability_zones` | `state` ("available") | `names`, `zone_ids` |
//! | `vpc` | `id` or `tags` (exactly one VPC must match) | `id`, `cidr`, `arn` |
//! | `subnets` | `vpc`, `tags` | `ids` (sorted) |
//! | `route53_zone` | `name`, `private_zone` (false) | `id`, `name` |
//! | `iam_role` | `name` | `arn`, `name` |
//! | `eks_cluster` | `name` | `name`, `arn`, `endpoint`, `version`, `connection` |
//! | `acm_certificate` | `domain`, `statuses` (["ISSUED"]) | `arn`, `domain`, `status` |
//! | `stack` | `dir` (another stack of the repository, with the same `--env`) | its outputs |
//!
//! `stack` reads the other stack's state through its own location (local
//! file or `[stack.backend]`), without its lock, and never writes it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::providers::{Ctx, ProviderError};
use crate::stack::Stack;

/// The kinds, their fields and their attributes.
pub const KINDS: &[(&str, &[&str], &[&str])] = &[
    ("caller_identity", &[], &["account_id", "arn", "user_id", "partition"]),
    ("region", &[], &["name"]),
    ("availability_zones", &["state"], &["names", "zone_ids"]),
    ("vpc", &["id", "tags"], &["id", "cidr", "arn"]),
    ("subnets", &["vpc", "tags"], &["ids"]),
    ("route53_zone", &["name", "private_zone"], &["id", "name"]),
    ("iam_role", &["name"], &["arn", "name"]),
    (
        "eks_cluster",
        &["name"],
        &["name", "arn", "endpoint", "version", "connection"],
    ),
    ("acm_certificate", &["domain", "statuses"], &["arn", "domain", "status"]),
    // Any output of the other stack.
    ("stack", &["dir"], &[]),
];

/// The read-only IAM actions of each lookup kind (for `slipway iam-policy`);
/// GetCallerIdentity needs no permission.
pub fn actions(kind: &str) -> &'static [&'static str] {
    match kind {
        "availability_zones" => &["ec2:DescribeAvailabilityZones"],
        "vpc" => &["ec2:DescribeVpcs"],
        "subnets" => &["ec2:DescribeSubnets"],
        "route53_zone" => &["route53:ListHostedZonesByName"],
        "iam_role" => &["iam:GetRole"],
        "eks_cluster" => &["eks:DescribeCluster"],
        "acm_certificate" => &["acm:ListCertificates"],
        _ => &[],
    }
}

/// EC2 filters for `tags = { k = v }` (and `vpc-id` when given).
fn tag_filters(config: &Value, vpc: Option<&str>) -> Vec<aws_sdk_ec2::types::Filter> {
    let mut out: Vec<aws_sdk_ec2::types::Filter> = config
        .get("tags")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{k}"))
                .values(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                .build()
        })
        .collect();
    if let Some(v) = vpc {
        out.push(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(v).build());
    }
    out
}

fn field<'a>(config: &'a Value, name: &str) -> Result<&'a str, ProviderError> {
    config
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::new(format!("`{name}` is required (a string)")))
}

pub fn kind(name: &str) -> Option<&'static (&'static str, &'static [&'static str], &'static [&'static str])> {
    KINDS.iter().find(|k| k.0 == name)
}

/// Read every lookup of the stack: `kind.name` -> its attributes. Fields
/// are resolved with the variables and locals (a lookup cannot read a
/// resource: it is read before any is planned).
pub async fn read_all(
    stack: &Stack,
    variables: &BTreeMap<String, Value>,
    ctx: &Ctx,
) -> Result<BTreeMap<String, Value>, ProviderError> {
    let mut out = BTreeMap::new();
    if stack.lookups.is_empty() {
        return Ok(out);
    }
    let locals = stack.local_values();
    let no_attrs = |_: &str| None;
    // A lookup may read another (a subnet list by the VPC a lookup found):
    // read each once every lookup it names has been read.
    let mut left: Vec<&crate::stack::LookupDecl> = stack.lookups.iter().collect();
    while !left.is_empty() {
        let ready = |l: &&crate::stack::LookupDecl| {
            l.refs.iter().all(|r| match &r.reference {
                crate::stack::template::Ref::Lookup { kind, name, .. } => out.contains_key(&format!("{kind}.{name}")),
                _ => true,
            })
        };
        let Some(i) = left.iter().position(ready) else {
            let names: Vec<String> = left.iter().map(|l| format!("lookup.{}.{}", l.kind, l.name)).collect();
            return Err(ProviderError::new(format!(
                "these lookups read each other in a cycle, or read one that is not declared: {}",
                names.join(", ")
            )));
        };
        let l = left.remove(i);
        let scope = crate::plan::make::Scope::new(&no_attrs, variables, &locals, &stack.dir).with_lookups(&out);
        let config = crate::stack::template::resolve(&l.config, &scope)
            .map_err(|e| ProviderError::new(format!("lookup.{}.{}: {e}", l.kind, l.name)))?;
        let value = if l.kind == "stack" {
            stack_outputs(stack, &config).await
        } else {
            read(&l.kind, &config, ctx).await
        };
        let value = value.map_err(|e| ProviderError::new(format!("lookup.{}.{}: {}", l.kind, l.name, e.message)))?;
        out.insert(format!("{}.{}", l.kind, l.name), value);
    }
    Ok(out)
}

async fn read(kind: &str, config: &Value, ctx: &Ctx) -> Result<Value, ProviderError> {
    let aws = ctx.aws().await?;
    match kind {
        "caller_identity" => {
            let sts = aws_sdk_sts::Client::new(&aws.config);
            let me = sts.get_caller_identity().send().await.map_err(|e| {
                ProviderError::new(format!(
                    "sts GetCallerIdentity: {}",
                    aws_sdk_sts::error::DisplayErrorContext(&e)
                ))
            })?;
            let arn = me.arn().unwrap_or_default().to_string();
            let partition = arn.split(':').nth(1).unwrap_or("aws").to_string();
            Ok(json!({
                "account_id": me.account().unwrap_or_default(),
                "arn": arn,
                "user_id": me.user_id().unwrap_or_default(),
                "partition": partition,
            }))
        }
        "region" => Ok(json!({ "name": aws.region })),
        "availability_zones" => {
            let state = config.get("state").and_then(Value::as_str).unwrap_or("available");
            let got = aws
                .ec2
                .describe_availability_zones()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("state")
                        .values(state)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "ec2 DescribeAvailabilityZones: {}",
                        aws_sdk_ec2::error::DisplayErrorContext(&e)
                    ))
                })?;
            let mut zones: Vec<(String, String)> = got
                .availability_zones()
                .iter()
                .map(|z| {
                    (
                        z.zone_name().unwrap_or_default().to_string(),
                        z.zone_id().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            zones.sort();
            Ok(json!({
                "names": zones.iter().map(|z| z.0.clone()).collect::<Vec<_>>(),
                "zone_ids": zones.iter().map(|z| z.1.clone()).collect::<Vec<_>>(),
            }))
        }
        "vpc" => {
            let mut req = aws.ec2.describe_vpcs();
            if let Some(id) = config.get("id").and_then(Value::as_str) {
                req = req.vpc_ids(id);
            }
            for f in tag_filters(config, None) {
                req = req.filters(f);
            }
            if config.get("id").is_none() && config.get("tags").is_none() {
                return Err(ProviderError::new("give `id` or `tags` to find the VPC by"));
            }
            let got = req.send().await.map_err(|e| {
                ProviderError::new(format!(
                    "ec2 DescribeVpcs: {}",
                    aws_sdk_ec2::error::DisplayErrorContext(&e)
                ))
            })?;
            match got.vpcs() {
                [v] => Ok(json!({
                    "id": v.vpc_id().unwrap_or_default(),
                    "cidr": v.cidr_block().unwrap_or_default(),
                    "arn": format!("arn:{}:ec2:{}:{}:vpc/{}", crate::providers::aws::permissions::partition(&aws.region), aws.region, v.owner_id().unwrap_or_default(), v.vpc_id().unwrap_or_default()),
                })),
                [] => Err(ProviderError::new("no VPC matches")),
                many => Err(ProviderError::new(format!(
                    "{} VPCs match ({}): narrow the tags, slipway will not guess",
                    many.len(),
                    many.iter().filter_map(|v| v.vpc_id()).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
        "subnets" => {
            let mut req = aws.ec2.describe_subnets();
            for f in tag_filters(config, config.get("vpc").and_then(Value::as_str)) {
                req = req.filters(f);
            }
            let got = req.send().await.map_err(|e| {
                ProviderError::new(format!(
                    "ec2 DescribeSubnets: {}",
                    aws_sdk_ec2::error::DisplayErrorContext(&e)
                ))
            })?;
            let mut ids: Vec<String> = got
                .subnets()
                .iter()
                .filter_map(|s| s.subnet_id().map(str::to_string))
                .collect();
            ids.sort();
            Ok(json!({ "ids": ids }))
        }
        "route53_zone" => {
            let want = format!("{}.", field(config, "name")?.trim_end_matches('.'));
            let private = config.get("private_zone").and_then(Value::as_bool).unwrap_or(false);
            let got = aws
                .route53
                .list_hosted_zones_by_name()
                .dns_name(&want)
                .send()
                .await
                .map_err(|e| {
                    ProviderError::new(format!(
                        "route53 ListHostedZonesByName: {}",
                        aws_sdk_route53::error::DisplayErrorContext(&e)
                    ))
                })?;
            let found: Vec<_> = got
                .hosted_zones()
                .iter()
                .filter(|z| z.name() == want)
                .filter(|z| z.config().map(|c| c.private_zone()).unwrap_or(false) == private)
                .collect();
            match found.as_slice() {
                [z] => {
                    Ok(json!({ "id": z.id().trim_start_matches("/hostedzone/"), "name": want.trim_end_matches('.') }))
                }
                [] => Err(ProviderError::new(format!(
                    "no {} hosted zone is named {want}",
                    if private { "private" } else { "public" }
                ))),
                many => Err(ProviderError::new(format!(
                    "{} hosted zones are named {want}; slipway will not guess",
                    many.len()
                ))),
            }
        }
        "iam_role" => {
            let name = field(config, "name")?;
            let got = aws.iam.get_role().role_name(name).send().await.map_err(|e| {
                ProviderError::new(format!(
                    "iam GetRole {name}: {}",
                    aws_sdk_iam::error::DisplayErrorContext(&e)
                ))
            })?;
            let role = got
                .role()
                .ok_or_else(|| ProviderError::new(format!("no role {name}")))?;
            Ok(json!({ "arn": role.arn(), "name": role.role_name() }))
        }
        "eks_cluster" => {
            let name = field(config, "name")?;
            let got = aws.eks.describe_cluster().name(name).send().await.map_err(|e| {
                ProviderError::new(format!(
                    "eks DescribeCluster {name}: {}",
                    aws_sdk_eks::error::DisplayErrorContext(&e)
                ))
            })?;
            let c = got
                .cluster()
                .ok_or_else(|| ProviderError::new(format!("no cluster {name}")))?;
            // `connection` is what an eks_cluster resource gives Kubernetes
            // kinds as `cluster`: slipway describes the cluster again by name
            // when it connects, so the endpoint is always AWS's.
            Ok(json!({
                "name": c.name().unwrap_or_default(),
                "arn": c.arn().unwrap_or_default(),
                "endpoint": c.endpoint().unwrap_or_default(),
                "version": c.version().unwrap_or_default(),
                "connection": {
                    "name": c.name().unwrap_or_default(),
                    "endpoint": c.endpoint().unwrap_or_default(),
                    "certificate_authority": c.certificate_authority().and_then(|a| a.data()).unwrap_or_default(),
                    "region": aws.region,
                },
            }))
        }
        "acm_certificate" => {
            let domain = field(config, "domain")?;
            let statuses: Vec<String> = match config.get("statuses") {
                Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
                _ => vec!["ISSUED".to_string()],
            };
            let mut found = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let mut req = aws.acm.list_certificates().set_next_token(next.take());
                for st in &statuses {
                    req = req.certificate_statuses(aws_sdk_acm::types::CertificateStatus::from(st.as_str()));
                }
                let got = req.send().await.map_err(|e| {
                    ProviderError::new(format!(
                        "acm ListCertificates: {}",
                        aws_sdk_acm::error::DisplayErrorContext(&e)
                    ))
                })?;
                found.extend(
                    got.certificate_summary_list()
                        .iter()
                        .filter(|c| c.domain_name() == Some(domain))
                        .map(|c| {
                            (
                                c.certificate_arn().unwrap_or_default().to_string(),
                                c.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                            )
                        }),
                );
                match got.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_string()),
                    _ => break,
                }
            }
            match found.as_slice() {
                [(arn, status)] => Ok(json!({ "arn": arn, "domain": domain, "status": status })),
                [] => Err(ProviderError::new(format!(
                    "no certificate for {domain} is {}",
                    statuses.join(" or ")
                ))),
                many => Err(ProviderError::new(format!(
                    "{} certificates for {domain} are {} ({}); slipway will not guess",
                    many.len(),
                    statuses.join(" or "),
                    many.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            }
        }
        other => Err(ProviderError::new(format!("unknown lookup kind `{other}`"))),
    }
}

/// The outputs another stack of the repository has in its state: read
/// without its lock, never written. Sensitive outputs are left out (the
/// state holds only their hashes).
async fn stack_outputs(stack: &Stack, config: &Value) -> Result<Value, ProviderError> {
    let dir = field(config, "dir")?;
    let path = stack.dir.join(dir);
    let roots = crate::operator::repository_roots();
    let real = path
        .canonicalize()
        .map_err(|e| ProviderError::new(format!("dir {dir:?}: {e}")))?;
    if !roots.iter().any(|r| real.starts_with(r)) {
        return Err(ProviderError::new(format!(
            "dir {dir:?} is outside the repository ({}); a stack reads only stacks of its own repository",
            real.display()
        )));
    }
    let other = crate::stack::load::load(&path).map_err(|e| ProviderError::new(format!("loading {dir}: {e}")))?;
    let store = match other.s3_backend() {
        Some(c) => crate::state::store::Store::open(Some(&c), std::path::Path::new("")).await,
        None => crate::state::store::Store::Local(other.default_state_path()),
    };
    let snapshot = store
        .read()
        .await
        .map_err(|e| ProviderError::new(format!("reading the state of {}: {e}", other.name)))?;
    let (state, _) = store
        .replay(snapshot)
        .await
        .map_err(|e| ProviderError::new(format!("reading the state of {}: {e}", other.name)))?;
    let state = state.ok_or_else(|| {
        ProviderError::new(format!(
            "stack `{}` ({dir}) has no state yet at {}: apply it first",
            other.name,
            store.location().display()
        ))
    })?;
    let outputs: serde_json::Map<String, Value> = state
        .outputs
        .into_iter()
        .filter(|(_, o)| !o.sensitive)
        .map(|(k, o)| (k, o.value))
        .collect();
    Ok(Value::Object(outputs))
}

/// The EKS clusters what the lookups read names: an `eks_cluster` lookup's,
/// and any connection (`{ name, endpoint, certificate_authority }`) among
/// another stack's outputs. Kubernetes kinds may connect to these; the
/// endpoint is still AWS's own (DescribeCluster by name).
pub fn cluster_names(read: &BTreeMap<String, Value>) -> Vec<String> {
    fn connections(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if o.contains_key("endpoint") && o.contains_key("certificate_authority") {
                    if let Some(n) = o.get("name").and_then(Value::as_str) {
                        out.push(n.to_string());
                    }
                }
                o.values().for_each(|x| connections(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| connections(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (key, v) in read {
        if key.starts_with("eks_cluster.") || key.starts_with("stack.") {
            connections(v, &mut out);
        }
    }
    out
}
