//! `slipway output DIR [NAME]`: the stack's outputs from the last apply.

use std::path::Path;

use super::{find_store, read_state, CmdError, Exit};
use crate::value::render;

pub async fn run(dir: Option<&Path>, state: Option<&Path>, name: Option<&str>, json: bool) -> Exit {
    let store = find_store(dir, state).await?;
    let s = read_state(&store, None).await?.0.ok_or_else(|| {
        CmdError::Other(format!(
            "no state at {}; apply the stack first",
            store.location().display()
        ))
    })?;
    if let Some(n) = name {
        // Asked for by name: shown even when sensitive, as Terraform does.
        let o = s.outputs.get(n).ok_or_else(|| {
            CmdError::Other(format!(
                "no output `{n}`; the stack's outputs are: {}",
                s.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if contains_hash(&o.value) {
            return Err(CmdError::Other(format!(
                "output `{n}` holds a value computed from a sensitive variable, and slipway stores only \
                 its keyed hash, never the value; read it where the variable's value comes from"
            )));
        }
        match (&o.value, json) {
            (serde_json::Value::String(v), false) => println!("{v}"),
            (v, _) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        }
        return Ok(0);
    }
    if json {
        let doc: serde_json::Map<String, serde_json::Value> = s
            .outputs
            .iter()
            .map(|(k, o)| (k.clone(), serde_json::json!({"value": if o.sensitive { serde_json::Value::Null } else { o.value.clone() }, "sensitive": o.sensitive})))
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        for (k, v) in crate::apply::display_outputs(&s.outputs) {
            println!("{k} = {}", render(&v, 0));
        }
    }
    Ok(0)
}

fn contains_hash(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.starts_with("hmac-sha256:"),
        serde_json::Value::Array(a) => a.iter().any(contains_hash),
        serde_json::Value::Object(o) => o.values().any(contains_hash),
        _ => false,
    }
}
