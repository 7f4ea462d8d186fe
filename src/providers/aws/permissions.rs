//! The IAM actions a stack's AWS kinds call, and the least-privilege policy
//! made from them (`slipway iam-policy`). Each kind declares its actions
//! beside its calls (`AwsKind::PERMISSIONS`); this module only groups them
//! into statements, scoped the way AWS can check them:
//! - reads (refresh, plan, drift, the waits of apply) on any resource:
//!   EC2's and ELB's Describe calls cannot be scoped, and reading is harmless;
//! - creates only when the request carries `slipway:stack = <stack>`
//!   (`aws:RequestTag`), and tagging at creation only for those creates
//!   (`ec2:CreateAction`, `elasticloadbalancing:CreateAction`);
//! - the existing objects a create names (an EC2 subnet's VPC) by resource type;
//! - changes and deletes only on objects tagged `slipway:stack = <stack>`
//!   (`aws:ResourceTag`);
//! - calls on objects slipway never owns (the EKS cluster security group and
//!   Auto Scaling group, a hosted zone's records) unscoped, named as such;
//! - `iam:PassRole` only for the roles the stack passes, only to EKS.
//!
//! It knows nothing of the stack format: the command hands it the kinds' declarations.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::TAG_STACK;

/// What one kind calls, grouped by how AWS lets a policy scope it.
#[derive(Debug, Clone, Copy)]
pub struct Permissions {
    /// Reads of refresh, plan and drift (and the waits of apply).
    pub read: &'static [&'static str],
    /// Reads that find an object by its ownership tags (settling a create a
    /// killed run left), for apply and destroy only: plan and drift read by ID.
    pub find: &'static [&'static str],
    /// Calls that make a new object with the ownership tags in the request.
    pub create: &'static [&'static str],
    /// Existing objects a create also acts on: (action, resource type) as in
    /// the type's ARN (`("ec2:CreateSubnet", "vpc")`).
    pub create_in: &'static [(&'static str, &'static str)],
    /// Calls on an object this stack made (changes, tags, deletes).
    pub owned: &'static [&'static str],
    /// Calls on objects slipway does not own, which no tag can scope.
    pub unowned: &'static [&'static str],
    /// Fields whose value is an IAM role ARN the kind passes to EKS.
    pub passes_roles: &'static [&'static str],
    /// Service-linked roles AWS makes on the first create of this kind.
    pub service_linked: &'static [&'static str],
    /// The tag and untag actions of the kind's service (set from its tagger):
    /// allowed on its own objects, and with its creates where the service
    /// authorizes tags at creation by the tag action itself (IAM, EKS, ACM).
    pub tags: Option<(&'static str, &'static str)>,
}

impl Permissions {
    /// A kind that calls nothing in AWS.
    pub const NONE: Permissions = Permissions {
        read: &[],
        find: &[],
        create: &[],
        create_in: &[],
        owned: &[],
        unowned: &[],
        passes_roles: &[],
        service_linked: &[],
        tags: None,
    };
}

/// Where the policy applies: the values its ARNs and conditions name.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The value of the `slipway:stack` tag the stack's objects carry.
    pub stack: String,
    pub region: String,
    /// The account ID, or `*`.
    pub account: String,
}

impl Scope {
    /// The partition of the region (`aws`, `aws-cn`, `aws-us-gov`, ISO).
    pub fn partition(&self) -> &'static str {
        partition(&self.region)
    }
}

/// The ARN partition a region belongs to.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The read-only policy of `slipway plan` and `slipway drift`.
pub fn read_policy(kinds: &[Permissions]) -> Value {
    let read = union(kinds.iter().flat_map(|k| k.read));
    json!({
        "Version": "2012-10-17",
        "Statement": [statement("SlipwayRead", &read, json!("*"), None)],
    })
}

/// The policy of `slipway apply` and `slipway destroy`: `kinds` as the
/// stack uses them, `roles` the ARNs of the roles it passes to EKS.
pub fn apply_policy(kinds: &[Permissions], roles: &BTreeSet<String>, scope: &Scope) -> Value {
    let p = scope.partition();
    let all = |f: fn(&Permissions) -> &'static [&'static str]| union(kinds.iter().flat_map(|k| f(k).iter()));
    let mut st = vec![statement("SlipwayRead", &all(|k| k.read), json!("*"), None)];
    let find = all(|k| k.find);
    if !find.is_empty() {
        st.push(statement("FindByOwnershipTags", &find, json!("*"), None));
    }
    let tag_actions: Vec<(&str, &str)> = kinds.iter().filter_map(|k| k.tags).collect();
    let mut create = all(|k| k.create);
    let by_request_tag = |a: &&str| !a.starts_with("ec2:") && !a.starts_with("elasticloadbalancing:");
    create.extend(
        tag_actions
            .iter()
            .map(|t| t.0)
            .filter(by_request_tag)
            .map(str::to_string),
    );
    let create = union(create);
    if !create.is_empty() {
        st.push(statement(
            "CreateOnlyTaggedForThisStack",
            &create,
            json!("*"),
            Some(json!({"StringEquals": {format!("aws:RequestTag/{TAG_STACK}"): scope.stack}})),
        ));
    }
    // EC2 and ELB authorize tags given at creation as a second action.
    for (service, sid) in [
        ("ec2", "TagOnlyAtCreationEc2"),
        ("elasticloadbalancing", "TagOnlyAtCreationElb"),
    ] {
        let actions: Vec<&str> = create
            .iter()
            .filter_map(|a| a.strip_prefix(service).and_then(|r| r.strip_prefix(':')))
            .collect();
        if actions.is_empty() {
            continue;
        }
        let tag = if service == "ec2" {
            "ec2:CreateTags"
        } else {
            "elasticloadbalancing:AddTags"
        };
        st.push(statement(
            sid,
            &[tag.to_string()],
            json!("*"),
            Some(json!({"StringEquals": {format!("{service}:CreateAction"): actions}})),
        ));
    }
    let mut parents: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (action, ty) in kinds.iter().flat_map(|k| k.create_in) {
        parents.entry(ty).or_default().insert(action.to_string());
    }
    for (ty, actions) in parents {
        let service = actions.iter().next().and_then(|a| a.split(':').next()).unwrap_or("ec2");
        let arn = format!("arn:{p}:{service}:{}:{}:{ty}/*", scope.region, scope.account);
        let actions: Vec<String> = actions.into_iter().collect();
        st.push(statement(
            &format!("CreateIn{}", sid_part(ty)),
            &actions,
            json!(arn),
            None,
        ));
    }
    let mut owned = all(|k| k.owned);
    owned.extend(tag_actions.iter().flat_map(|t| [t.0, t.1]).map(str::to_string));
    let owned = union(owned);
    if !owned.is_empty() {
        st.push(statement(
            "ChangeOnlyThisStacksObjects",
            &owned,
            json!("*"),
            Some(json!({"StringEquals": {format!("aws:ResourceTag/{TAG_STACK}"): scope.stack}})),
        ));
    }
    let unowned = all(|k| k.unowned);
    if !unowned.is_empty() {
        st.push(statement("ObjectsSlipwayDoesNotOwn", &unowned, json!("*"), None));
    }
    if !roles.is_empty() {
        st.push(statement(
            "PassOnlyTheStacksRolesToEks",
            &["iam:PassRole".to_string()],
            json!(roles.iter().collect::<Vec<_>>()),
            Some(json!({"StringEquals": {"iam:PassedToService": "eks.amazonaws.com"}})),
        ));
    }
    let linked = union(kinds.iter().flat_map(|k| k.service_linked));
    if !linked.is_empty() {
        st.push(statement(
            "ServiceLinkedRolesOfEksAndElb",
            &["iam:CreateServiceLinkedRole".to_string()],
            json!("*"),
            Some(json!({"StringEquals": {"iam:AWSServiceName": linked}})),
        ));
    }
    json!({"Version": "2012-10-17", "Statement": st})
}

/// The ARN of an IAM role by name, in any account of the scope.
pub fn role_arn(scope: &Scope, name: &str) -> String {
    format!("arn:{}:iam::{}:role/{name}", scope.partition(), scope.account)
}

fn statement(sid: &str, actions: &[String], resource: Value, condition: Option<Value>) -> Value {
    let mut s = json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource});
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

fn union(actions: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    actions
        .into_iter()
        .map(|a| a.as_ref().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `elastic-ip` as `ElasticIp`, for a statement ID.
fn sid_part(ty: &str) -> String {
    ty.split(['-', '/'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBNET: Permissions = Permissions {
        read: &["ec2:DescribeSubnets"],
        create: &["ec2:CreateSubnet"],
        create_in: &[("ec2:CreateSubnet", "vpc")],
        owned: &["ec2:DeleteSubnet", "ec2:CreateTags"],
        ..Permissions::NONE
    };

    fn scope(region: &str) -> Scope {
        Scope {
            stack: "blog-prod".into(),
            region: region.into(),
            account: "*".into(),
        }
    }

    fn sid<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid} in {policy:#}"))
    }

    #[test]
    fn the_plan_policy_has_only_reads() {
        let p = read_policy(&[SUBNET]);
        assert_eq!(p["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(p["Statement"][0]["Action"], json!(["ec2:DescribeSubnets"]));
    }

    #[test]
    fn creates_need_the_stack_tag_in_the_request_and_changes_on_the_object() {
        let p = apply_policy(&[SUBNET], &BTreeSet::new(), &scope("us-west-2"));
        let c = sid(&p, "CreateOnlyTaggedForThisStack");
        assert_eq!(
            c["Condition"]["StringEquals"]["aws:RequestTag/slipway:stack"],
            "blog-prod"
        );
        let o = sid(&p, "ChangeOnlyThisStacksObjects");
        assert_eq!(
            o["Condition"]["StringEquals"]["aws:ResourceTag/slipway:stack"],
            "blog-prod"
        );
        let t = sid(&p, "TagOnlyAtCreationEc2");
        assert_eq!(
            t["Condition"]["StringEquals"]["ec2:CreateAction"],
            json!(["CreateSubnet"])
        );
        assert_eq!(sid(&p, "CreateInVpc")["Resource"], "arn:aws:ec2:us-west-2:*:vpc/*");
    }

    #[test]
    fn arns_follow_the_partition_of_the_region() {
        let roles: BTreeSet<String> = [role_arn(&scope("cn-north-1"), "blog-cluster")].into();
        let p = apply_policy(&[SUBNET], &roles, &scope("cn-north-1"));
        assert_eq!(sid(&p, "CreateInVpc")["Resource"], "arn:aws-cn:ec2:cn-north-1:*:vpc/*");
        assert_eq!(
            sid(&p, "PassOnlyTheStacksRolesToEks")["Resource"],
            json!(["arn:aws-cn:iam::*:role/blog-cluster"])
        );
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
    }
}
