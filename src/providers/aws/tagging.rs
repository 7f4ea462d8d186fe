//! One tagger per service: how tags are set on and removed from a live
//! object. Kinds declare which one they use (`AwsKind::TAGGER`); the generic
//! lifecycle calls it, so no kind writes tag sync.

use std::collections::BTreeMap;

use super::{aws_err, AwsError, Clients};

/// How a kind's live tags are changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagger {
    /// EC2 CreateTags / DeleteTags on the resource ID.
    Ec2,
    /// ELBv2 AddTags / RemoveTags on the ARN.
    Elbv2,
    /// EKS TagResource / UntagResource on the ARN.
    Eks,
    /// ACM AddTagsToCertificate / RemoveTagsFromCertificate.
    Acm,
    /// IAM TagRole / UntagRole on the role name.
    IamRole,
    /// IAM TagOpenIDConnectProvider / UntagOpenIDConnectProvider on the ARN.
    IamOidcProvider,
}

impl Tagger {
    /// The IAM actions that tag and untag (for `slipway iam-policy`).
    pub fn actions(self) -> (&'static str, &'static str) {
        match self {
            Tagger::Ec2 => ("ec2:CreateTags", "ec2:DeleteTags"),
            Tagger::Elbv2 => ("elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"),
            Tagger::Eks => ("eks:TagResource", "eks:UntagResource"),
            Tagger::Acm => ("acm:AddTagsToCertificate", "acm:RemoveTagsFromCertificate"),
            Tagger::IamRole => ("iam:TagRole", "iam:UntagRole"),
            Tagger::IamOidcProvider => ("iam:TagOpenIDConnectProvider", "iam:UntagOpenIDConnectProvider"),
        }
    }

    /// Set `set` and remove `remove` on `target`; nothing is called when both are empty.
    pub async fn apply(
        self,
        aws: &Clients,
        target: &str,
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), AwsError> {
        if !set.is_empty() {
            self.set(aws, target, set).await?;
        }
        if !remove.is_empty() {
            self.remove(aws, target, remove).await?;
        }
        Ok(())
    }

    async fn set(self, aws: &Clients, target: &str, set: &BTreeMap<String, String>) -> Result<(), AwsError> {
        let pairs = set.iter();
        match self {
            Tagger::Ec2 => {
                use aws_sdk_ec2::types::Tag;
                let tags = pairs.map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
                aws.ec2
                    .create_tags()
                    .resources(target)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws_err("ec2 CreateTags"))?;
            }
            Tagger::Elbv2 => {
                use aws_sdk_elasticloadbalancingv2::types::Tag;
                let tags = pairs.map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
                aws.elb
                    .add_tags()
                    .resource_arns(target)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws_err("elbv2 AddTags"))?;
            }
            Tagger::Eks => {
                aws.eks
                    .tag_resource()
                    .resource_arn(target)
                    .set_tags(Some(set.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(aws_err("eks TagResource"))?;
            }
            Tagger::Acm => {
                use aws_sdk_acm::types::Tag;
                let tags = pairs
                    .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                    .collect();
                aws.acm
                    .add_tags_to_certificate()
                    .certificate_arn(target)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws_err("acm AddTagsToCertificate"))?;
            }
            Tagger::IamRole => {
                aws.iam
                    .tag_role()
                    .role_name(target)
                    .set_tags(Some(iam_tags(set)))
                    .send()
                    .await
                    .map_err(aws_err("iam TagRole"))?;
            }
            Tagger::IamOidcProvider => {
                aws.iam
                    .tag_open_id_connect_provider()
                    .open_id_connect_provider_arn(target)
                    .set_tags(Some(iam_tags(set)))
                    .send()
                    .await
                    .map_err(aws_err("iam TagOpenIDConnectProvider"))?;
            }
        }
        Ok(())
    }

    async fn remove(self, aws: &Clients, target: &str, keys: &[String]) -> Result<(), AwsError> {
        let keys = keys.to_vec();
        match self {
            Tagger::Ec2 => {
                use aws_sdk_ec2::types::Tag;
                aws.ec2
                    .delete_tags()
                    .resources(target)
                    .set_tags(Some(keys.iter().map(|k| Tag::builder().key(k).build()).collect()))
                    .send()
                    .await
                    .map_err(aws_err("ec2 DeleteTags"))?;
            }
            Tagger::Elbv2 => {
                aws.elb
                    .remove_tags()
                    .resource_arns(target)
                    .set_tag_keys(Some(keys))
                    .send()
                    .await
                    .map_err(aws_err("elbv2 RemoveTags"))?;
            }
            Tagger::Eks => {
                aws.eks
                    .untag_resource()
                    .resource_arn(target)
                    .set_tag_keys(Some(keys))
                    .send()
                    .await
                    .map_err(aws_err("eks UntagResource"))?;
            }
            Tagger::Acm => {
                use aws_sdk_acm::types::Tag;
                let tags = keys.iter().filter_map(|k| Tag::builder().key(k).build().ok()).collect();
                aws.acm
                    .remove_tags_from_certificate()
                    .certificate_arn(target)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(aws_err("acm RemoveTagsFromCertificate"))?;
            }
            Tagger::IamRole => {
                aws.iam
                    .untag_role()
                    .role_name(target)
                    .set_tag_keys(Some(keys))
                    .send()
                    .await
                    .map_err(aws_err("iam UntagRole"))?;
            }
            Tagger::IamOidcProvider => {
                aws.iam
                    .untag_open_id_connect_provider()
                    .open_id_connect_provider_arn(target)
                    .set_tag_keys(Some(keys))
                    .send()
                    .await
                    .map_err(aws_err("iam UntagOpenIDConnectProvider"))?;
            }
        }
        Ok(())
    }
}

/// IAM tags of a map (IAM's `Tag` builder fails only on a missing key or value).
pub fn iam_tags(t: &BTreeMap<String, String>) -> Vec<aws_sdk_iam::types::Tag> {
    t.iter()
        .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
        .collect()
}
