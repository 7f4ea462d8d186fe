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
            .ok_or_else(|| format!("the state holds `{}` of kind `{kind_name}`, which this slipway does not know", items[0].0))?
            .clone();
        tasks.push(async move {
            let reqs: Vec<ReadRequest<'_>> = items
                .iter()
                .map(|(a, r)| ReadRequest { address: a, id: &r.id, inputs: &r.inputs, attributes: &r.attributes })
                .collect();
            let got = kind.read_many(ctx, &reqs).await.map_err(|e| {
                format!("refreshing {} `{kind_name}` resource(s) failed: {e}", items.len())
            })?;
            if got.len() != items.len() {
                return Err(format!("kind `{kind_name}` answered {} reads for {} resources", got.len(), items.len()));
            }
            Ok::<_, String>(items.iter().map(|(a, _)| (*a).clone()).zip(got).collect::<Vec<_>>())
        });
    }
    let mut out = HashMap::with_capacity(state.resources.len());
    for r in futures_join_all(tasks).await {
        out.extend(r?);
    }
    Ok(out)
}

/// Run futures concurrently on the current task and collect their results in order.
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in futs.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
