//! What an AWS kind says about itself (`AwsKind`), and the one generic
//! `ResourceKind` implementation (`Aws<K>`) that runs every AWS kind's
//! lifecycle: schema check and canonical form, refresh aligned with the
//! state, lookup by ownership tags, the create/update skeleton with
//! adoption of an object found by a look-before-create, tag sync through the
//! service's tagger, and delete with bounded retry where "already gone" is
//! success. A kind writes only what is specific to it.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::tagging::Tagger;
use super::{
    all_tags, owned_by, owner_of, retry_on, tag_changes, user_view, AwsError, Clients, SETTLE_TIMEOUT, TAG_ADDRESS,
    TAG_ATTEMPT, TAG_LINEAGE, TAG_STACK,
};
use crate::path::PathSeg;
use crate::providers::common::{tags_in, with_attrs};
use crate::providers::{
    check_schema, generic_diff, Ctx, Diff, Live, ProviderError, ReadRequest, ResourceKind, SchemaError, StackIssue,
    StackView,
};

/// Which live objects a describe is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Select<'a> {
    /// The objects with these IDs (refresh). Missing ones are left out.
    Ids(&'a [ReadRequest<'a>]),
    /// The objects tagged as this address of the stack. A describe may
    /// return more (some APIs cannot filter by tag): ownership is checked
    /// again on the tags returned.
    Owner(&'a str),
}

impl Select<'_> {
    /// The IDs asked for (none when selecting by owner).
    pub fn ids(&self) -> Vec<String> {
        match self {
            Select::Ids(reqs) => reqs.iter().map(|r| r.id.to_string()).collect(),
            Select::Owner(_) => Vec::new(),
        }
    }
}

/// Tags as a map, key to value.
pub type Tags = BTreeMap<String, String>;

/// A live object with every tag it carries (ownership tags included).
#[derive(Debug, Clone)]
pub struct Tagged {
    /// Inputs in the shape of the kind's config (tags are set from `tags`).
    pub live: Live,
    pub tags: BTreeMap<String, String>,
}

/// What a create call gave.
pub enum Created {
    /// A new object: its ID and computed attributes.
    New { id: String, attributes: Value },
    /// An object this address already owns, found by a look before the
    /// create (a run killed after the call): it is converged by an update.
    Existing(Tagged),
}

impl Created {
    /// A new object with its ID and computed attributes.
    pub fn new(id: String, attributes: Value) -> Created {
        Created::New { id, attributes }
    }
}

/// The context of one call on one resource.
pub struct Call<'a> {
    pub ctx: &'a Ctx,
    pub aws: &'a Clients,
    pub address: &'a str,
}

/// An AWS kind as a description: its config, its facts, its calls.
#[async_trait]
pub trait AwsKind: Send + Sync + 'static {
    /// The config as written in stacks (a serde struct denying unknown fields).
    type Config: Serialize + DeserializeOwned + schemars::JsonSchema + Send + Sync;
    /// The kind's name as written in stacks.
    const NAME: &'static str;
    /// Attributes computed by the cloud (`id` at least).
    const COMPUTED: &'static [&'static str];
    /// Fields whose change replaces the object.
    const FORCE_NEW: &'static [&'static str] = &[];
    /// The create API has no idempotency token (or moto ignores it): a
    /// retried create may leave a second object, looked for after each create.
    const MAY_DUPLICATE: bool = false;
    /// Error codes meaning "already gone": a delete of it succeeds.
    const GONE: &'static [&'static str];
    /// Error codes retried on delete while dependents go away.
    const DELETE_RETRY: &'static [&'static str] = &[];
    /// How tags are changed on a live object.
    const TAGGER: Tagger;
    /// The IAM actions the kind calls (its tagger's are added).
    const PERMISSIONS: super::permissions::Permissions;
    /// Replace by creating the new object first.
    const CREATE_BEFORE_DESTROY: bool = false;
    /// Input fields shown as `(sensitive)`.
    const SENSITIVE: &'static [&'static str] = &[];
    /// A warning the plan shows when this kind is replaced.
    const REPLACE_WARNING: Option<&'static str> = None;

    /// The config with defaults that depend on the address (a default name)
    /// and lists in canonical order.
    fn canonical(&self, c: Self::Config, _stack: &str, _address: &str) -> Result<Self::Config, String> {
        Ok(c)
    }
    /// Checks beyond what serde can say (allowed values, combinations).
    fn check_more(&self, _config: &Value) -> Result<(), SchemaError> {
        Ok(())
    }
    /// What the apply will read from this machine is there (files).
    fn check_local(&self, _config: &Value) -> Result<(), SchemaError> {
        Ok(())
    }
    /// Checks against the rest of the stack.
    fn check_stack(&self, _view: &StackView<'_>) -> Vec<StackIssue> {
        Vec::new()
    }
    /// Checks of a change the schema alone cannot judge.
    fn check_change(&self, _prior: &Value, _desired: &Value) -> Result<(), SchemaError> {
        Ok(())
    }
    /// Resources this one must wait for that its config does not reference
    /// (AWS refuses a NAT gateway before its VPC's internet gateway is attached).
    fn implied_dependencies(&self, _config: &Value, _view: &StackView<'_>) -> Vec<String> {
        Vec::new()
    }
    /// A field's value in a canonical form, so that equal meanings compare equal.
    fn normalize(&self, _field: &str, v: &Value) -> Value {
        v.clone()
    }
    /// Fields whose change replaces the object only for some changes (a
    /// step back along a one-way setting), beyond `FORCE_NEW`.
    fn replaces(&self, _prior: &Value, _desired: &Value) -> Vec<String> {
        Vec::new()
    }
    /// The prior and desired values as the field-by-field diff compares
    /// them (a field the live side cannot know, a value not ours to fight).
    fn diff_view(&self, _prior: &mut Value, _desired: &mut Value) {}
    /// Inputs AWS never reports back, carried from the state into what a refresh read.
    fn keep_unread(&self, _state: &Value, _live: &mut Value) {}
    /// Why the live object is not ready yet (see `ResourceKind::pending`).
    fn pending(&self, _attributes: &Value) -> Option<String> {
        None
    }
    /// Why the live object never will be (see `ResourceKind::tainted`).
    fn tainted(&self, _attributes: &Value) -> Option<String> {
        None
    }
    /// The object tags are set on (the ID, or an ARN among the attributes).
    fn tag_target(&self, live: &Live) -> String {
        live.id.clone()
    }
    /// A last touch on every live object returned (derived attributes).
    fn view(&self, _ctx: &Ctx, live: Live) -> Live {
        live
    }

    /// Live objects with all their tags.
    async fn describe(&self, ctx: &Ctx, aws: &Clients, sel: Select<'_>) -> Result<Vec<Tagged>, ProviderError>;
    /// Create the object with `tags` (ownership included) in the call itself.
    async fn create(&self, call: &Call<'_>, c: &Self::Config, tags: &Tags) -> Result<Created, ProviderError>;
    /// Bring the object from `old` to `new`, tags aside (the framework syncs
    /// them); returns computed attributes that changed (or `Value::Null`).
    async fn update(
        &self,
        call: &Call<'_>,
        prior: &Live,
        old: &Self::Config,
        new: &Self::Config,
    ) -> Result<Value, ProviderError>;
    /// Before the delete call: detach, disassociate, empty.
    async fn before_delete(&self, _call: &Call<'_>, _id: &str, _attributes: &Value) -> Result<(), ProviderError> {
        Ok(())
    }
    /// The delete call itself; retried on `DELETE_RETRY`, `GONE` is success.
    async fn delete_call(&self, call: &Call<'_>, id: &str, attributes: &Value) -> Result<(), AwsError>;
    /// After the delete call: wait until the object is gone.
    async fn after_delete(&self, _call: &Call<'_>, _id: &str) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// AWS's tag limits, checked before any call: 50 tags an object (slipway's
/// ownership tags take 4), keys up to 128 characters, values up to 256, and
/// the `aws:` and `slipway:` prefixes reserved.
fn check_tags(config: &Value) -> Result<(), SchemaError> {
    let Some(tags) = config.get("tags").and_then(Value::as_object) else {
        return Ok(());
    };
    let at = |k: Option<&str>| {
        let mut p = vec![PathSeg::Field("tags".into())];
        p.extend(k.map(|k| PathSeg::Field(k.into())));
        p
    };
    const OURS: usize = 4;
    if tags.len() > 50 - OURS {
        return Err(SchemaError::at(
            at(None),
            format!(
                "{} tags: AWS allows 50 an object, and slipway's ownership takes {OURS}",
                tags.len()
            ),
        ));
    }
    for (k, v) in tags {
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("slipway:") {
            return Err(SchemaError::at(
                at(Some(k)),
                format!("{k:?}: the `aws:` and `slipway:` prefixes are reserved"),
            ));
        }
        if k.chars().count() > 128 {
            return Err(SchemaError::at(at(Some(k)), "a tag key is at most 128 characters"));
        }
        if v.as_str().is_some_and(|v| !v.contains("${") && v.chars().count() > 256) {
            return Err(SchemaError::at(at(Some(k)), "a tag value is at most 256 characters"));
        }
    }
    Ok(())
}

/// An `AwsKind` run by the generic lifecycle.
pub struct Aws<K>(pub K);

fn bad_config(address: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(format!("{address}: config does not fit the kind: {e}"))
}

impl<K: AwsKind> Aws<K> {
    fn parse(&self, stack: &str, address: &str, config: &Value) -> Result<K::Config, ProviderError> {
        let c: K::Config = serde_json::from_value(config.clone()).map_err(|e| bad_config(address, e))?;
        self.0.canonical(c, stack, address).map_err(ProviderError::new)
    }

    fn to_user(&self, ctx: &Ctx, address: &str, t: Tagged) -> Live {
        self.0.view(ctx, user_view(ctx, address, t.live, t.tags))
    }

    /// Proof of ownership before a change: the live object's tags must name
    /// this state (its lineage) and this address, or, for objects made before
    /// lineages were recorded, this stack and address. A state edited to point
    /// at another team's object fails here, naming the object and its owner,
    /// before anything is called. `None`: no object of this ID was found.
    async fn owned_live(
        &self,
        ctx: &Ctx,
        aws: &Clients,
        address: &str,
        id: &str,
        inputs: &Value,
    ) -> Result<Option<Tagged>, ProviderError> {
        let req = ReadRequest {
            address,
            id,
            inputs,
            attributes: inputs,
        };
        let found = self
            .0
            .describe(ctx, aws, Select::Ids(std::slice::from_ref(&req)))
            .await?;
        let Some(t) = found.into_iter().find(|t| t.live.id == id) else {
            return Ok(None);
        };
        let tag = |k: &str| t.tags.get(k).map(String::as_str);
        let ours = tag(TAG_STACK) == Some(ctx.stack.as_str())
            && match (tag(TAG_LINEAGE), ctx.lineage.as_deref()) {
                // This state's object; after `state mv` its tags may still carry the old address.
                (Some(l), Some(mine)) => l == mine,
                (None, _) => tag(TAG_ADDRESS) == Some(super::address_tag(address).as_str()),
                (Some(_), None) => false,
            };
        if ours {
            return Ok(Some(t));
        }
        Err(ProviderError::new(format!(
            "{} {id} is not this state's to change: its tags say it belongs to {}. The state records it as \
             {address}, so the state was edited or copied from another. Nothing was changed. If {address} \
             should manage this object, run `slipway state rm {address}` and take it over deliberately with \
             `slipway import DIR {address} {id}`",
            K::NAME,
            owner_of(&t.tags)
        )))
    }

    /// The computed attributes a prior object had.
    fn computed_of(prior: &Value) -> Value {
        let mut out = serde_json::Map::new();
        for a in K::COMPUTED {
            if let Some(v) = prior.get(*a) {
                out.insert(a.to_string(), v.clone());
            }
        }
        Value::Object(out)
    }
}

#[async_trait]
impl<K: AwsKind> ResourceKind for Aws<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }
    fn config_schema(&self) -> Value {
        serde_json::to_value(schemars::schema_for!(K::Config)).unwrap_or_default()
    }
    fn check(&self, config: &Value) -> Result<(), SchemaError> {
        check_schema::<K::Config>(config)?;
        check_tags(config)?;
        self.0.check_more(config)
    }
    fn complete(&self, stack: &str, address: &str, config: &Value) -> Value {
        crate::providers::complete_tolerant(config, &|c| {
            self.parse(stack, address, c)
                .ok()
                .and_then(|c| serde_json::to_value(c).ok())
        })
    }
    fn check_stack(&self, view: &StackView<'_>) -> Vec<StackIssue> {
        self.0.check_stack(view)
    }
    fn check_local_inputs(&self, config: &Value) -> Result<(), SchemaError> {
        self.0.check_local(config)
    }
    fn computed_attributes(&self) -> &'static [&'static str] {
        K::COMPUTED
    }
    fn force_new_fields(&self) -> &'static [&'static str] {
        K::FORCE_NEW
    }
    fn create_before_destroy(&self) -> bool {
        K::CREATE_BEFORE_DESTROY
    }
    fn normalize(&self, field: &str, v: &Value) -> Value {
        self.0.normalize(field, v)
    }
    fn diff(&self, prior: &Value, desired: &Value) -> Diff {
        let (mut prior, mut desired) = (prior.clone(), desired.clone());
        self.0.diff_view(&mut prior, &mut desired);
        let mut d = generic_diff(self, &prior, &desired);
        for f in self.0.replaces(&prior, &desired) {
            if d.changed.contains(&f) && !d.forces_replace.contains(&f) {
                d.forces_replace.push(f);
            }
        }
        d
    }
    fn check_change(&self, prior: &Value, desired: &Value) -> Result<(), SchemaError> {
        self.0.check_change(prior, desired)
    }
    fn implied_dependencies(&self, config: &Value, view: &StackView<'_>) -> Vec<String> {
        self.0.implied_dependencies(config, view)
    }
    fn sensitive_fields(&self) -> &'static [&'static str] {
        K::SENSITIVE
    }
    fn may_duplicate(&self) -> bool {
        K::MAY_DUPLICATE
    }
    fn replace_warning(&self) -> Option<&'static str> {
        K::REPLACE_WARNING
    }
    fn pending(&self, attributes: &Value) -> Option<String> {
        self.0.pending(attributes)
    }
    fn tainted(&self, attributes: &Value) -> Option<String> {
        self.0.tainted(attributes)
    }
    fn aws_permissions(&self) -> Option<super::permissions::Permissions> {
        Some(super::permissions::Permissions {
            tags: Some(K::TAGGER.actions()),
            ..K::PERMISSIONS
        })
    }

    async fn read_many(&self, ctx: &Ctx, reqs: &[ReadRequest<'_>]) -> Result<Vec<Option<Live>>, ProviderError> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        let aws = ctx.aws().await?;
        let mut found: HashMap<String, Tagged> = self
            .0
            .describe(ctx, &aws, Select::Ids(reqs))
            .await?
            .into_iter()
            .map(|t| (t.live.id.clone(), t))
            .collect();
        Ok(reqs
            .iter()
            .map(|r| {
                found.remove(r.id).map(|t| {
                    let mut live = self.to_user(ctx, r.address, t);
                    self.0.keep_unread(r.inputs, &mut live.inputs);
                    live
                })
            })
            .collect())
    }

    async fn find_owned(&self, ctx: &Ctx, address: &str) -> Result<Vec<Live>, ProviderError> {
        let aws = ctx.aws().await?;
        Ok(self
            .0
            .describe(ctx, &aws, Select::Owner(address))
            .await?
            .into_iter()
            .filter(|t| owned_by(ctx, address, &t.tags))
            .filter(|t| ctx.attempt.as_ref().is_none_or(|a| t.tags.get(TAG_ATTEMPT) == Some(a)))
            .map(|t| self.to_user(ctx, address, t))
            .collect())
    }

    async fn create(&self, ctx: &Ctx, address: &str, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = self.parse(&ctx.stack, address, config)?;
        let inputs = serde_json::to_value(&c).map_err(|e| bad_config(address, e))?;
        let tags = all_tags(ctx, address, &tags_in(&inputs));
        let call = Call {
            ctx,
            aws: &aws,
            address,
        };
        let created = self.0.create(&call, &c, &tags).await.map_err(|e| {
            if !e.is(super::ALREADY_EXISTS) {
                return e;
            }
            ProviderError {
                message: format!(
                    "{}\n  An object of this name exists and this state did not make it. slipway never takes over \
                     what it did not create: take it over deliberately with `slipway import {address} ID`, or choose \
                     another name",
                    e.message
                ),
                code: e.code,
            }
        })?;
        match created {
            Created::New { id, attributes } => {
                if id.is_empty() {
                    return Err(ProviderError::new(format!("{} create returned no ID", K::NAME)));
                }
                let live = Live {
                    id,
                    attributes: with_attrs(&inputs, attributes),
                    inputs,
                };
                Ok(self.0.view(ctx, live))
            }
            Created::Existing(t) => {
                let prior = self.to_user(ctx, address, t);
                self.converge(ctx, address, &prior, config).await
            }
        }
    }

    async fn update(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        // Not found: the update call itself says so.
        self.owned_live(ctx, &aws, address, &prior.id, &prior.inputs).await?;
        self.converge(ctx, address, prior, config).await
    }

    async fn retag(&self, ctx: &Ctx, address: &str, live: &Live, owned_as: Option<&str>) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        if let Some(from) = owned_as {
            self.owned_live(ctx, &aws, from, &live.id, &live.inputs).await?;
        }
        let all = all_tags(ctx, address, &tags_in(&live.inputs));
        let own = all.into_iter().filter(|(k, _)| k.starts_with("slipway:")).collect();
        Ok(K::TAGGER.apply(&aws, &self.0.tag_target(live), &own, &[]).await?)
    }

    async fn delete(&self, ctx: &Ctx, address: &str, id: &str, attributes: &Value) -> Result<(), ProviderError> {
        let aws = ctx.aws().await?;
        // Not found (or not visible yet): the delete call decides, GONE is success.
        self.owned_live(ctx, &aws, address, id, attributes).await?;
        let call = Call {
            ctx,
            aws: &aws,
            address,
        };
        self.0.before_delete(&call, id, attributes).await?;
        let r = retry_on(K::DELETE_RETRY, SETTLE_TIMEOUT, || {
            self.0.delete_call(&call, id, attributes)
        })
        .await;
        match r {
            Err(e) if e.is(K::GONE) => return Ok(()),
            Err(e) => return Err(e.into()),
            Ok(()) => {}
        }
        self.0.after_delete(&call, id).await
    }
}

impl<K: AwsKind> Aws<K> {
    /// Bring an object proven ours from `prior` to `config`.
    async fn converge(&self, ctx: &Ctx, address: &str, prior: &Live, config: &Value) -> Result<Live, ProviderError> {
        let aws = ctx.aws().await?;
        let c = self.parse(&ctx.stack, address, config)?;
        let old = self.parse(&ctx.stack, address, &prior.inputs)?;
        let call = Call {
            ctx,
            aws: &aws,
            address,
        };
        let changed = self.0.update(&call, prior, &old, &c).await?;
        let inputs = serde_json::to_value(&c).map_err(|e| bad_config(address, e))?;
        let (set, remove) = tag_changes(ctx, address, &tags_in(&prior.inputs), &tags_in(&inputs));
        K::TAGGER.apply(&aws, &self.0.tag_target(prior), &set, &remove).await?;
        let attributes = with_attrs(&with_attrs(&inputs, Self::computed_of(&prior.attributes)), changed);
        Ok(self.0.view(
            ctx,
            Live {
                id: prior.id.clone(),
                attributes,
                inputs,
            },
        ))
    }
}

#[cfg(test)]
mod tests;
