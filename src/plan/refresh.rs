//! Refresh: read the live object of every resource in the state, one batched
//! `read_many` per kind, the kinds concurrently.

use std::collections::{BTreeMap, HashMap};

use crate::providers::{Ctx, Live, ReadRequest, Registry};
use crate::state::State;

/// Address -> live object (`None`: gone from the cloud).
pub type LiveMap = HashMap<String, Option<Live>>;

/// Read everything the state holds.
pub async fn refresh(state: &State, registry: &Registry, ctx: &Ctx) -> Result<LiveMap, String> {
    let mut by_kind: BTreeMap<&str, Vec<(&String, &crate::state::ResourceState)>> = BTreeMap::new();
    for (addr, r) in &state.resources {
        by_kind.entry(r.kind.as_str()).or_default().push((addr, r));
    }
    let mut tasks = Vec::new();
    for (kind_name, items) in by_kind {
        let kind = registry
            .get(kind_name)
            .ok_or_else(|| {
                format!(
                    "the state holds `{}` of kind `{kind_name}`, which this slipway does not know",
                    items[0].0
                )
            })?
            .clone();
        tasks.push(async move {
            let reqs: Vec<ReadRequest<'_>> = items
                .iter()
                .map(|(a, r)| ReadRequest {
                    address: a,
                    id: &r.id,
                    inputs: &r.inputs,
                    attributes: &r.attributes,
                })
                .collect();
            let got = kind
                .read_many(ctx, &reqs)
                .await
                .map_err(|e| format!("refreshing {} `{kind_name}` resource(s) failed: {e}", items.len()))?;
            if got.len() != items.len() {
                return Err(format!(
                    "kind `{kind_name}` answered {} reads for {} resources",
                    got.len(),
                    items.len()
                ));
            }
            Ok::<_, String>(items.iter().map(|(a, _)| (*a).clone()).zip(got).collect::<Vec<_>>())
        });
    }
    let mut out = HashMap::with_capacity(state.resources.len());
    for r in crate::providers::join_all(tasks).await {
        out.extend(r?);
    }
    Ok(out)
}
