//! `slipway render DIR [ADDR] [-o yaml|json]`: the Kubernetes objects the
//! stack applies, as YAML documents or a JSON `v1 List`, with references resolved as far as they are known without the
//! cloud (unknown values print as "(known after apply)"); secret data is
//! never printed, nor is a sensitive variable's value (it shows as
//! "(sensitive value)").

use std::path::Path;

use serde_json::Value;

use super::{load_stack, CmdError, Exit};
use crate::providers::Registry;
use crate::stack::template;
use crate::value::UNKNOWN;

fn show_unknowns(v: &Value) -> Value {
    match v {
        Value::String(s) if s == UNKNOWN => Value::String("(known after apply)".into()),
        Value::Array(a) => Value::Array(a.iter().map(show_unknowns).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), show_unknowns(x))).collect()),
        other => other.clone(),
    }
}

pub fn run(dir: &Path, address: Option<&str>, vars: &[String], json: bool, registry: &Registry) -> Exit {
    let l = load_stack(dir, vars, registry)?;
    if let Some(a) = address {
        if l.stack.resource(a).is_none() {
            return Err(CmdError::Other(format!("no resource `{a}` in the stack")));
        }
    }
    let mut docs = Vec::new();
    let locals = l.stack.local_values();
    for addr in l.graph.order() {
        if address.is_some_and(|a| a != addr) {
            continue;
        }
        let Some(r) = l.stack.resource(&addr) else { continue };
        let Some(kind) = registry.get(&r.kind) else { continue };
        // References to other resources are unknown here: render never reads the cloud.
        let unknown_attrs = |_: &str| Some(crate::value::unknown());
        let scope = crate::plan::make::Scope::new(&unknown_attrs, &l.variables, &locals, &l.stack.dir);
        let resolved = template::resolve(&r.config, &scope).map_err(|e| CmdError::Other(format!("{addr}: {e}")))?;
        let completed = kind.complete(&l.stack.name, &addr, &resolved);
        if let Some(ms) = completed.get("manifests").and_then(Value::as_array) {
            for m in ms {
                docs.push(crate::sensitive::shown(&show_unknowns(m)));
            }
        }
    }
    if docs.is_empty() && address.is_some() {
        return Err(CmdError::Other("that resource renders no Kubernetes objects".into()));
    }
    if json {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
        println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
    } else {
        print!("{}", crate::yaml::documents(&docs));
    }
    Ok(0)
}
