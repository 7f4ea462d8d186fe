//! Bringing existing cloud objects under slipway: read them through their
//! kinds, give them readable addresses, and write a stack whose resources
//! refer to each other (`${vpc.main.id}`, not `vpc-0abc...`) plus a state
//! that already knows them. Only reads the cloud.

pub mod eksctl;
pub mod write;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::providers::{Ctx, Live, ProviderError, ReadRequest, Registry};

/// One object to import: its slipway kind, address name and cloud ID, and
/// where it was found (for comments and output).
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: String,
    pub name: String,
    pub id: String,
    pub origin: String,
}

impl Found {
    pub fn address(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

/// Something that exists but slipway does not model: listed, never dropped silently.
#[derive(Debug, Clone)]
pub struct Unmodelled {
    pub what: String,
    pub id: String,
    pub origin: String,
}

/// An object read from the cloud, ready to be written as a resource.
#[derive(Debug, Clone)]
pub struct Imported {
    pub found: Found,
    pub live: Live,
    /// The config to write: the live inputs with references put in.
    pub config: Value,
}

/// Read every found object through its kind (one batched read per kind).
/// Objects that are gone are returned apart, with their origin.
pub async fn read_all(
    ctx: &Ctx,
    registry: &Registry,
    found: Vec<Found>,
) -> Result<(Vec<Imported>, Vec<Found>), ProviderError> {
    let mut by_kind: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    let order: Vec<String> = found.iter().map(Found::address).collect();
    for f in found {
        by_kind.entry(f.kind.clone()).or_default().push(f);
    }
    let mut got: BTreeMap<String, Imported> = BTreeMap::new();
    let mut gone = Vec::new();
    let empty = json!({});
    for (kind_name, items) in by_kind {
        let kind = registry
            .get(&kind_name)
            .ok_or_else(|| ProviderError::new(format!("unknown kind `{kind_name}`")))?;
        let addresses: Vec<String> = items.iter().map(Found::address).collect();
        let reqs: Vec<ReadRequest<'_>> = items
            .iter()
            .zip(&addresses)
            .map(|(f, a)| ReadRequest {
                address: a,
                id: &f.id,
                inputs: &empty,
                attributes: &empty,
            })
            .collect();
        let lives = kind.read_many(ctx, &reqs).await?;
        for (f, live) in items.into_iter().zip(lives) {
            match live {
                Some(live) => {
                    let config = live.inputs.clone();
                    got.insert(f.address(), Imported { found: f, live, config });
                }
                None => gone.push(f),
            }
        }
    }
    let imported = order.iter().filter_map(|a| got.remove(a)).collect();
    Ok((imported, gone))
}

/// Attributes whose values other resources hold, and the field names in
/// which a match becomes a reference (`None`: any field but tags).
const REFERABLE: &[(&str, Option<&str>)] = &[
    ("id", None),
    ("arn", None),
    ("name", Some("cluster")),
    ("oidc_issuer", Some("url")),
];

/// Put references where a config holds another imported object's ID or ARN
/// (tags excepted: they are labels, not links). A reference that would close
/// a cycle stays a literal, so the stack always loads.
pub fn link(items: &mut [Imported]) {
    for it in items.iter_mut() {
        escape(&mut it.config);
    }
    let mut targets: BTreeMap<String, (String, String, Option<&str>)> = BTreeMap::new();
    for it in items.iter() {
        let name = it.live.attributes.get("name").and_then(Value::as_str);
        let arn = it.live.attributes.get("arn").and_then(Value::as_str);
        for (attr, only_in) in REFERABLE {
            if let Some(v) = it.live.attributes.get(*attr).and_then(Value::as_str) {
                // An ID that is also the name (clusters, roles) or the ARN is linked as that.
                if !v.is_empty() && !(*attr == "id" && (name == Some(v) || arn == Some(v))) {
                    targets
                        .entry(v.to_string())
                        .or_insert_with(|| (it.found.address(), attr.to_string(), *only_in));
                    // An OIDC provider's URL is the issuer without its scheme.
                    if let Some(bare) = v.strip_prefix("https://") {
                        targets
                            .entry(bare.to_string())
                            .or_insert_with(|| (it.found.address(), attr.to_string(), *only_in));
                    }
                }
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for it in items.iter_mut() {
        let me = it.found.address();
        if let Some(obj) = it.config.as_object_mut() {
            for (field, v) in obj.iter_mut() {
                if field == "tags" {
                    continue;
                }
                replace(v, field, &me, &targets, &mut edges);
            }
        }
    }
}

/// A live `${` (an IAM policy variable such as `${aws:username}`) is
/// written `$${` so the stack does not read it as a reference.
fn escape(v: &mut Value) {
    match v {
        Value::String(s) if s.contains("${") => *s = s.replace("${", "$${"),
        Value::Array(a) => a.iter_mut().for_each(escape),
        Value::Object(o) => o.values_mut().for_each(escape),
        _ => {}
    }
}

fn reaches(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n.clone()) {
            stack.extend(edges.get(&n).into_iter().flatten().cloned());
        }
    }
    false
}

fn replace(
    v: &mut Value,
    field: &str,
    me: &str,
    targets: &BTreeMap<String, (String, String, Option<&str>)>,
    edges: &mut BTreeMap<String, BTreeSet<String>>,
) {
    match v {
        Value::String(s) => {
            if let Some((addr, attr, only_in)) = targets.get(s.as_str()) {
                if addr != me && only_in.is_none_or(|f| f == field) && !reaches(edges, addr, me) {
                    edges.entry(me.to_string()).or_default().insert(addr.clone());
                    *s = format!("${{{addr}.{attr}}}");
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace(x, field, me, targets, edges)),
        Value::Object(o) => o.values_mut().for_each(|x| replace(x, field, me, targets, edges)),
        _ => {}
    }
}

/// `ControlPlaneSecurityGroup` -> `control_plane_security_group`: lower
/// snake case, acronyms kept whole, safe as an address name.
pub fn snake(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    let mut clean = String::new();
    for part in out.split('_').filter(|p| !p.is_empty()) {
        if !clean.is_empty() {
            clean.push('_');
        }
        clean.push_str(part);
    }
    clean
}

/// Make `name` unique among the names already used for `kind`.
pub fn unique(used: &mut BTreeSet<String>, kind: &str, name: &str) -> String {
    let name = match name {
        "" => "main".to_string(),
        n if n.starts_with(|c: char| c.is_ascii_digit()) => format!("r_{n}"),
        n => n.to_string(),
    };
    let name = name.as_str();
    let mut n = name.to_string();
    let mut i = 2;
    while !used.insert(format!("{kind}.{n}")) {
        n = format!("{name}_{i}");
        i += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_keeps_acronyms_whole() {
        assert_eq!(snake("ControlPlaneSecurityGroup"), "control_plane_security_group");
        assert_eq!(snake("NATIP"), "natip");
        assert_eq!(snake("VPCGatewayAttachment"), "vpc_gateway_attachment");
        assert_eq!(snake("Public_us_west_2a_"), "public_us_west_2a");
        assert_eq!(snake("ng-1"), "ng_1");
        assert_eq!(snake("1a"), "1a");
        let mut used = BTreeSet::new();
        assert_eq!(unique(&mut used, "vpc", "1a"), "r_1a");
        assert_eq!(unique(&mut used, "vpc", ""), "main");
        assert_eq!(unique(&mut used, "vpc", ""), "main_2");
    }

    fn item(kind: &str, name: &str, attrs: Value, config: Value) -> Imported {
        Imported {
            found: Found {
                kind: kind.into(),
                name: name.into(),
                id: String::new(),
                origin: String::new(),
            },
            live: Live {
                id: String::new(),
                inputs: config.clone(),
                attributes: attrs,
            },
            config,
        }
    }

    #[test]
    fn link_refers_by_id_skips_tags_and_never_closes_a_cycle() {
        let mut items = vec![
            item(
                "vpc",
                "main",
                json!({"id": "vpc-1"}),
                json!({"cidr": "10.0.0.0/16", "p": "${aws:username}"}),
            ),
            item(
                "subnet",
                "a",
                json!({"id": "subnet-1"}),
                json!({"vpc": "vpc-1", "tags": {"x": "vpc-1"}}),
            ),
            item(
                "security_group",
                "a",
                json!({"id": "sg-a"}),
                json!({"ingress": [{"source_security_group": "sg-b"}]}),
            ),
            item(
                "security_group",
                "b",
                json!({"id": "sg-b"}),
                json!({"ingress": [{"source_security_group": "sg-a"}]}),
            ),
            item(
                "eks_cluster",
                "c",
                json!({"id": "c", "name": "c", "arn": "arn:c"}),
                json!({"name": "c"}),
            ),
            item(
                "eks_nodegroup",
                "n",
                json!({"id": "c:n"}),
                json!({"cluster": "c", "name": "c"}),
            ),
        ];
        link(&mut items);
        assert_eq!(items[0].config["p"], "$${aws:username}");
        assert_eq!(items[1].config["vpc"], "${vpc.main.id}");
        assert_eq!(items[1].config["tags"]["x"], "vpc-1");
        assert_eq!(
            items[2].config["ingress"][0]["source_security_group"],
            "${security_group.b.id}"
        );
        assert_eq!(items[3].config["ingress"][0]["source_security_group"], "sg-a");
        assert_eq!(items[5].config["cluster"], "${eks_cluster.c.name}");
        assert_eq!(items[5].config["name"], "c");
    }
}
