//! The generic lifecycle on the SDK's mock client: a small test kind over
//! EKS clusters (the one SDK built here with its test utilities) stands for
//! any AWS kind.

use std::collections::HashMap;

use aws_sdk_eks::operation::delete_cluster::{DeleteClusterError, DeleteClusterOutput};
use aws_sdk_eks::operation::describe_cluster::{DescribeClusterError, DescribeClusterOutput};
use aws_sdk_eks::operation::list_clusters::ListClustersOutput;
use aws_sdk_eks::operation::tag_resource::TagResourceOutput;
use aws_sdk_eks::operation::untag_resource::UntagResourceOutput;
use aws_sdk_eks::types::error::{InvalidRequestException, ResourceInUseException, ResourceNotFoundException};
use aws_sdk_eks::types::Cluster;
use aws_sdk_eks::Client;
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::providers::aws::aws_err;

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TestConfig {
    #[serde(default)]
    version: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// A kind over EKS clusters with just enough calls to run the lifecycle.
struct TestKind;

fn tagged(c: &Cluster) -> Tagged {
    let name = c.name().unwrap_or_default().to_string();
    Tagged {
        live: Live {
            id: name.clone(),
            inputs: json!({"version": c.version().unwrap_or_default()}),
            attributes: json!({"id": name, "arn": c.arn().unwrap_or_default()}),
        },
        tags: c.tags().cloned().unwrap_or_default().into_iter().collect(),
    }
}

async fn describe_one(aws: &Clients, name: &str) -> Result<Option<Tagged>, ProviderError> {
    match aws
        .eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(aws_err("eks DescribeCluster"))
    {
        Ok(o) => Ok(o.cluster().map(tagged)),
        Err(e) if e.is(&["ResourceNotFoundException"]) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[async_trait]
impl AwsKind for TestKind {
    type Config = TestConfig;
    const NAME: &'static str = "test_cluster";
    const COMPUTED: &'static [&'static str] = &["id", "arn"];
    const GONE: &'static [&'static str] = &["ResourceNotFoundException"];
    const DELETE_RETRY: &'static [&'static str] = &["ResourceInUseException"];
    const TAGGER: Tagger = Tagger::Eks;
    const PERMISSIONS: crate::providers::aws::permissions::Permissions =
        crate::providers::aws::permissions::Permissions::NONE;

    fn tag_target(&self, live: &Live) -> String {
        live.attributes["arn"].as_str().unwrap_or_default().to_string()
    }

    async fn describe(&self, _ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError> {
        let names = match sel {
            Select::Ids(_) => sel.ids(),
            Select::Owner(_) => {
                let out = aws
                    .eks
                    .list_clusters()
                    .send()
                    .await
                    .map_err(aws_err("eks ListClusters"))?;
                out.clusters().to_vec()
            }
        };
        let mut out = Vec::new();
        for n in names {
            out.extend(describe_one(aws, &n).await?);
        }
        Ok(out)
    }

    async fn create(&self, call: &Call<'_>, _c: &TestConfig, _tags: &Tags) -> Result<Created, ProviderError> {
        // Look before creating, as kinds whose API has no idempotency do.
        let mine = self.describe(call.ctx, call.aws, Select::Owner(call.address)).await?;
        match mine.into_iter().find(|t| owned_by(call.ctx, call.address, &t.tags)) {
            Some(t) => Ok(Created::Existing(t)),
            None => Err(ProviderError::new("this test never creates")),
        }
    }

    async fn update(&self, _: &Call<'_>, _: &Live, _: &TestConfig, _: &TestConfig) -> Result<Value, ProviderError> {
        Ok(json!({"updated": true}))
    }

    async fn delete_call(&self, call: &Call<'_>, id: &str, _attributes: &Value) -> Result<(), AwsError> {
        call.aws
            .eks
            .delete_cluster()
            .name(id)
            .send()
            .await
            .map_err(aws_err("eks DeleteCluster"))?;
        Ok(())
    }
}

/// Error metadata as the SDK parses it off the wire (the code decisions match on).
fn meta(code: &str) -> aws_sdk_eks::error::ErrorMetadata {
    aws_sdk_eks::error::ErrorMetadata::builder().code(code).build()
}

fn ctx_with(rules: &[&Rule]) -> Ctx {
    crate::providers::aws::mock_ctx("shop", mock_client!(aws_sdk_eks, RuleMode::MatchAny, rules))
}

fn cluster(name: &str, address: &str, extra: &[(&str, &str)]) -> Cluster {
    let mut tags: HashMap<String, String> = HashMap::from([
        ("slipway:stack".into(), "shop".into()),
        ("slipway:address".into(), address.into()),
    ]);
    for (k, v) in extra {
        tags.insert(k.to_string(), v.to_string());
    }
    Cluster::builder()
        .name(name)
        .arn(format!("arn:aws:eks:us-east-1:1:cluster/{name}"))
        .version("1.31")
        .set_tags(Some(tags))
        .build()
}

fn describes(clusters: Vec<Cluster>) -> Rule {
    mock!(Client::describe_cluster).then_compute_response(move |r| {
        match clusters.iter().find(|c| c.name() == r.name()) {
            Some(c) => MockResponse::Output(DescribeClusterOutput::builder().cluster(c.clone()).build()),
            None => MockResponse::Error(DescribeClusterError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no such cluster")
                    .meta(meta("ResourceNotFoundException"))
                    .build(),
            )),
        }
    })
}

#[tokio::test]
async fn delete_retries_while_in_use_then_succeeds_with_sdk_mock_client() {
    let delete = mock!(Client::delete_cluster)
        .sequence()
        .error(|| {
            DeleteClusterError::ResourceInUseException(
                ResourceInUseException::builder()
                    .message("in use")
                    .meta(meta("ResourceInUseException"))
                    .build(),
            )
        })
        .output(|| DeleteClusterOutput::builder().build())
        .build();
    let describe = describes(vec![cluster("a", "test_cluster.a", &[])]);
    let ctx = ctx_with(&[&describe, &delete]);
    Aws(TestKind)
        .delete(&ctx, "test_cluster.a", "a", &json!({}))
        .await
        .unwrap();
    assert_eq!(delete.num_calls(), 2, "one refused call, then the one that succeeded");
}

#[tokio::test]
async fn delete_of_an_object_already_gone_succeeds_with_sdk_mock_client() {
    let delete = mock!(Client::delete_cluster).then_error(|| {
        DeleteClusterError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("gone")
                .meta(meta("ResourceNotFoundException"))
                .build(),
        )
    });
    let describe = describes(vec![]);
    let ctx = ctx_with(&[&describe, &delete]);
    Aws(TestKind)
        .delete(&ctx, "test_cluster.a", "a", &json!({}))
        .await
        .unwrap();
    assert_eq!(delete.num_calls(), 1);
}

#[tokio::test]
async fn delete_fails_on_other_errors_keeping_the_code_with_sdk_mock_client() {
    let delete = mock!(Client::delete_cluster).then_error(|| {
        DeleteClusterError::InvalidRequestException(
            InvalidRequestException::builder()
                .message("bad")
                .meta(meta("InvalidRequestException"))
                .build(),
        )
    });
    let describe = describes(vec![cluster("a", "test_cluster.a", &[])]);
    let ctx = ctx_with(&[&describe, &delete]);
    let e = Aws(TestKind)
        .delete(&ctx, "test_cluster.a", "a", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("InvalidRequestException"));
    assert!(e.message.contains("eks DeleteCluster"), "{}", e.message);
    assert_eq!(delete.num_calls(), 1, "not retried");
}

#[tokio::test]
async fn delete_and_update_refuse_an_object_another_owner_tagged_with_sdk_mock_client() {
    let mut foreign = cluster("a", "test_cluster.a", &[]);
    foreign
        .tags
        .as_mut()
        .unwrap()
        .insert("slipway:stack".into(), "platform".into());
    let untagged = Cluster::builder()
        .name("b")
        .arn("arn:aws:eks:us-east-1:1:cluster/b")
        .build();
    let delete = mock!(Client::delete_cluster).then_output(|| DeleteClusterOutput::builder().build());
    let tag = mock!(Client::tag_resource).then_output(|| TagResourceOutput::builder().build());
    let describe = describes(vec![foreign, untagged]);
    let ctx = ctx_with(&[&describe, &delete, &tag]);
    for id in ["a", "b"] {
        let e = Aws(TestKind)
            .delete(&ctx, "test_cluster.a", id, &json!({}))
            .await
            .unwrap_err();
        assert!(e.message.contains("is not this state's to change"), "{}", e.message);
        let prior = Live {
            id: id.into(),
            inputs: json!({"version": "1.31", "tags": {}}),
            attributes: json!({"id": id, "arn": format!("arn:aws:eks:us-east-1:1:cluster/{id}")}),
        };
        let want = json!({"version": "1.31", "tags": {"team": "web"}});
        let e = Aws(TestKind)
            .update(&ctx, "test_cluster.a", &prior, &want)
            .await
            .unwrap_err();
        assert!(e.message.contains("Nothing was changed"), "{}", e.message);
    }
    assert!(
        format!(
            "{:?}",
            Aws(TestKind)
                .delete(&ctx, "test_cluster.a", "a", &json!({}))
                .await
                .unwrap_err()
                .message
        )
        .contains("platform"),
        "the owner is named"
    );
    assert_eq!((delete.num_calls(), tag.num_calls()), (0, 0), "nothing changed");
}

#[tokio::test]
async fn refresh_keeps_request_order_and_marks_missing_objects_with_sdk_mock_client() {
    let describe = describes(vec![cluster("b", "test_cluster.b", &[("team", "web")])]);
    let ctx = ctx_with(&[&describe]);
    let (inputs, attrs) = (json!({}), json!({}));
    let reqs = [
        ReadRequest {
            address: "test_cluster.a",
            id: "a",
            inputs: &inputs,
            attributes: &attrs,
        },
        ReadRequest {
            address: "test_cluster.b",
            id: "b",
            inputs: &inputs,
            attributes: &attrs,
        },
    ];
    let got = Aws(TestKind).read_many(&ctx, &reqs).await.unwrap();
    assert!(got[0].is_none(), "a is gone");
    let b = got[1].as_ref().expect("b is live");
    assert_eq!(b.id, "b");
    // The user's view: only the user's tags, inputs among the attributes.
    assert_eq!(b.inputs["tags"], json!({"team": "web"}));
    assert_eq!(b.attributes["version"], json!("1.31"));
}

#[tokio::test]
async fn find_owned_keeps_only_this_address_of_this_stack_with_sdk_mock_client() {
    let mut other_stack = cluster("c", "test_cluster.a", &[]);
    other_stack
        .tags
        .as_mut()
        .unwrap()
        .insert("slipway:stack".into(), "other".into());
    let list = mock!(Client::list_clusters).then_output(|| {
        ListClustersOutput::builder()
            .clusters("a")
            .clusters("b")
            .clusters("c")
            .build()
    });
    let describe = describes(vec![
        cluster("a", "test_cluster.a", &[]),
        cluster("b", "test_cluster.b", &[]),
        other_stack,
    ]);
    let ctx = ctx_with(&[&list, &describe]);
    let found = Aws(TestKind).find_owned(&ctx, "test_cluster.a").await.unwrap();
    assert_eq!(found.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["a"]);
}

#[tokio::test]
async fn update_adds_and_removes_only_the_changed_tags_on_the_arn_with_sdk_mock_client() {
    let tag = mock!(Client::tag_resource)
        .match_requests(|r| {
            r.resource_arn() == Some("arn:aws:eks:us-east-1:1:cluster/a")
                && r.tags().map(|t| t.len()) == Some(1)
                && r.tags().and_then(|t| t.get("env")).map(String::as_str) == Some("prod")
        })
        .then_output(|| TagResourceOutput::builder().build());
    let untag = mock!(Client::untag_resource)
        .match_requests(|r| r.tag_keys() == ["old"])
        .then_output(|| UntagResourceOutput::builder().build());
    let describe = describes(vec![cluster("a", "test_cluster.a", &[])]);
    let ctx = ctx_with(&[&describe, &tag, &untag]);
    let prior = Live {
        id: "a".into(),
        inputs: json!({"version": "1.31", "tags": {"team": "web", "old": "x"}}),
        attributes: json!({"id": "a", "arn": "arn:aws:eks:us-east-1:1:cluster/a", "stale": 1}),
    };
    let want = json!({"version": "1.31", "tags": {"team": "web", "env": "prod"}});
    let live = Aws(TestKind)
        .update(&ctx, "test_cluster.a", &prior, &want)
        .await
        .unwrap();
    assert_eq!((tag.num_calls(), untag.num_calls()), (1, 1));
    assert_eq!(live.inputs["tags"], json!({"env": "prod", "team": "web"}));
    assert_eq!(live.attributes["arn"], json!("arn:aws:eks:us-east-1:1:cluster/a"));
    assert_eq!(
        live.attributes["updated"],
        json!(true),
        "what the kind's update returned"
    );
    assert!(
        live.attributes.get("stale").is_none(),
        "only computed attributes carry over"
    );
}

#[tokio::test]
async fn create_that_finds_its_own_object_converges_it_instead_of_creating_with_sdk_mock_client() {
    let list = mock!(Client::list_clusters).then_output(|| ListClustersOutput::builder().clusters("a").build());
    let describe = describes(vec![cluster("a", "test_cluster.a", &[])]);
    let tag = mock!(Client::tag_resource).then_output(|| TagResourceOutput::builder().build());
    let ctx = ctx_with(&[&list, &describe, &tag]);
    let live = Aws(TestKind)
        .create(
            &ctx,
            "test_cluster.a",
            &json!({"version": "1.31", "tags": {"team": "web"}}),
        )
        .await
        .unwrap();
    assert_eq!(live.id, "a");
    assert_eq!(
        live.attributes["updated"],
        json!(true),
        "adopted, then updated to the config"
    );
    assert_eq!(tag.num_calls(), 1, "the config's tag was added to the adopted object");
}

#[test]
fn tags_within_aws_limits_pass_and_the_rest_name_the_tag() {
    assert!(check_tags(&json!({"tags": {"team": "web"}})).is_ok());
    let many: serde_json::Map<String, Value> = (0..47).map(|i| (format!("k{i}"), json!("v"))).collect();
    let e = check_tags(&json!({ "tags": many })).unwrap_err();
    assert!(e.message.contains("47 tags: AWS allows 50"), "{}", e.message);
    let e = check_tags(&json!({"tags": {"aws:cloudformation:stack-name": "x"}})).unwrap_err();
    assert!(e.message.contains("prefixes are reserved"), "{}", e.message);
    assert!(check_tags(&json!({"tags": {"slipway:stack": "x"}})).is_err());
    let e = check_tags(&json!({"tags": {"k": "v".repeat(257)}})).unwrap_err();
    assert_eq!(e.path.len(), 2, "the path names the tag");
    assert!(check_tags(&json!({"tags": {"k".repeat(129): "v"}})).is_err());
}
