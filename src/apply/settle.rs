//! Settle what an interrupted run left pending (DESIGN.md, crash safety): a
//! create is looked up by its ownership tags and adopted or forgotten; a
//! delete is checked and dropped when the object is gone; an update is
//! dropped, since the refresh that follows reads the live object anyway.

use crate::providers::{Ctx, ReadRequest, Registry};
use crate::state::{Operation, ResourceState, State};

/// Settle every pending intent; returns one line per intent saying what happened.
pub async fn settle(state: &mut State, registry: &Registry, ctx: &Ctx) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let pending = std::mem::take(&mut state.pending);
    for intent in pending {
        let Some(kind) = registry.get(&intent.kind) else {
            return Err(format!(
                "a pending {:?} of `{}` has unknown kind `{}`",
                intent.operation, intent.address, intent.kind
            ));
        };
        match intent.operation {
            Operation::Create => {
                // Only this state's objects, and of them only those the interrupted
                // attempt made (a journal from before attempt tokens: any of this
                // state's objects for the address, none of them deleted).
                let ctx = ctx.with_lineage(&state.lineage).with_attempt(intent.attempt.clone());
                let found = kind
                    .find_owned(&ctx, &intent.address)
                    .await
                    .map_err(|e| format!("settling the interrupted create of {}: {e}", intent.address))?;
                // Nothing the state tracks (under any address) is ever adopted or a duplicate.
                let known: Vec<&str> = state
                    .resources
                    .values()
                    .chain(state.deposed.iter().map(|d| &d.resource))
                    .map(|r| r.id.as_str())
                    .collect();
                let mut new: Vec<_> = found.into_iter().filter(|l| !known.contains(&l.id.as_str())).collect();
                if new.is_empty() {
                    notes.push(format!(
                        "{}: the interrupted create made nothing; forgot it",
                        intent.address
                    ));
                    continue;
                }
                let adopt = new.remove(0);
                for extra in new {
                    if intent.attempt.is_none() {
                        notes.push(format!(
                            "{}: {} also carries this resource's ownership tags; left alone (import or delete it yourself)",
                            intent.address, extra.id
                        ));
                        continue;
                    }
                    kind.delete(&ctx, &intent.address, &extra.id, &extra.attributes)
                        .await
                        .map_err(|e| format!("deleting duplicate {} of {}: {e}", extra.id, intent.address))?;
                    notes.push(format!(
                        "{}: deleted duplicate object {} left by a retried create",
                        intent.address, extra.id
                    ));
                }
                notes.push(format!(
                    "{}: adopted {} made by the interrupted create",
                    intent.address, adopt.id
                ));
                if let Some(old) = state.resources.remove(&intent.address) {
                    // The interrupted create was a replacement: the old object is deposed.
                    state.deposed.push(crate::state::DeposedObject {
                        address: intent.address.clone(),
                        resource: old,
                    });
                }
                state.resources.insert(
                    intent.address.clone(),
                    ResourceState {
                        kind: intent.kind.clone(),
                        id: adopt.id,
                        inputs: adopt.inputs,
                        attributes: adopt.attributes,
                        dependencies: Vec::new(),
                        sensitive_hashes: Default::default(),
                        protect: false,
                    },
                );
            }
            Operation::Update => {
                notes.push(format!(
                    "{}: an update was interrupted; the refresh reads its live state",
                    intent.address
                ));
            }
            Operation::Delete => {
                let Some(id) = intent.id.clone() else { continue };
                let entry = state
                    .resources
                    .get(&intent.address)
                    .filter(|r| r.id == id)
                    .or_else(|| {
                        state
                            .deposed
                            .iter()
                            .find(|d| d.address == intent.address && d.resource.id == id)
                            .map(|d| &d.resource)
                    })
                    .cloned();
                let Some(entry) = entry else { continue };
                let req = ReadRequest {
                    address: &intent.address,
                    id: &id,
                    inputs: &entry.inputs,
                    attributes: &entry.attributes,
                };
                let live = kind
                    .read_many(ctx, &[req])
                    .await
                    .map_err(|e| format!("settling the interrupted delete of {}: {e}", intent.address))?;
                if live.first().is_some_and(Option::is_some) {
                    notes.push(format!(
                        "{}: an interrupted delete left {id} in place; it stays in the state",
                        intent.address
                    ));
                } else {
                    notes.push(format!(
                        "{}: the interrupted delete of {id} finished; removed it from the state",
                        intent.address
                    ));
                    state.resources.retain(|a, r| !(a == &intent.address && r.id == id));
                    state
                        .deposed
                        .retain(|d| !(d.address == intent.address && d.resource.id == id));
                }
            }
        }
    }
    Ok(notes)
}
