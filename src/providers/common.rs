//! What several providers share: the user's view of a live object, keyed
//! secret hashes, short hashes, address-to-name and tag maps. Nothing here
//! knows a cloud API; no provider imports another provider for these.

use std::collections::BTreeMap;

use hmac::KeyInit;
use hmac::Mac;
use serde_json::Value;

/// The resource name of an address: `subnet.public_a` -> `public_a`.
/// The name part of an address, as cloud names can hold it: an instance
/// `subnet.private["us-west-2a"]` gives `private-us-west-2a`.
///
/// Inside a module the module's names come first: `module.web.app.main`
/// gives `web-main`, `module.web["a"].app.main` gives `web-a-main`.
pub fn name_of(address: &str) -> String {
    let aliases = NAME_ALIASES.get_or_init(Default::default);
    if let Some(from) = aliases.lock().ok().and_then(|a| a.get(address).cloned()) {
        return name_of_address(&from);
    }
    name_of_address(address)
}

/// `[[moved]] from = A to = B`: B's default cloud names stay A's, as in
/// Terraform, where a move renames nothing. Kept while the entry stays.
static NAME_ALIASES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
    std::sync::OnceLock::new();

/// The stack's moves (to -> from), chains followed to the first address.
pub fn name_moves(moves: &[(String, String)]) {
    let mut map: std::collections::HashMap<String, String> =
        moves.iter().map(|(to, from)| (to.clone(), from.clone())).collect();
    for _ in 0..moves.len() {
        let next: Vec<(String, String)> = map
            .iter()
            .filter_map(|(to, from)| map.get(from).map(|f| (to.clone(), f.clone())))
            .filter(|(to, f)| to != f)
            .collect();
        if next.is_empty() {
            break;
        }
        map.extend(next);
    }
    if let Ok(mut a) = NAME_ALIASES.get_or_init(Default::default).lock() {
        *a = map;
    }
}

fn name_of_address(address: &str) -> String {
    if let Some((module, _, name)) = crate::stack::split_address(address) {
        if !module.is_empty() {
            let mut out = String::new();
            for part in module.trim_end_matches('.').split("module.").filter(|p| !p.is_empty()) {
                out.push_str(&name_of_address(&format!("m.{}", part.trim_end_matches('.'))));
                out.push('-');
            }
            out.push_str(&name_of_address(&format!("m.{name}")));
            return out;
        }
    }
    let name = address.split_once('.').map(|(_, n)| n).unwrap_or(address);
    match name.split_once('[') {
        Some((base, key)) => {
            let key: String = key
                .trim_end_matches(']')
                .trim_matches('"')
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("{base}-{key}")
        }
        None => name.to_string(),
    }
}

/// A kind with nothing outside the state to read (`data`, `k8s_check`):
/// what the state holds is what exists.
pub fn as_stored(reqs: &[super::ReadRequest<'_>]) -> Vec<Option<super::Live>> {
    reqs.iter()
        .map(|r| {
            Some(super::Live {
                id: r.id.to_string(),
                inputs: r.inputs.clone(),
                attributes: r.attributes.clone(),
            })
        })
        .collect()
}

/// Attributes made of `base` plus `extra` (the values of `extra` win).
pub fn with_attrs(base: &Value, extra: Value) -> Value {
    let mut a = base.as_object().cloned().unwrap_or_default();
    if let Some(e) = extra.as_object() {
        for (k, v) in e {
            a.insert(k.clone(), v.clone());
        }
    }
    Value::Object(a)
}

/// The `tags` table of a config or of a live object's inputs.
pub fn tags_in(config: &Value) -> BTreeMap<String, String> {
    config
        .get("tags")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default()
}

/// A keyed hash of a secret (HMAC-SHA256 under the state's random key, the
/// stack and the address), so a rotation shows as an update while neither the
/// state nor a plan holds anything a guess can be tested against.
pub fn secret_hash(stack: &str, address: &str, secret: &str) -> String {
    let key = format!("slipway-secret-hash:{}:{stack}:{address}", crate::state::secret_key());
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(secret.as_bytes());
    let out = mac.finalize().into_bytes();
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    format!("hmac-sha256:{hex}")
}

/// A short, stable, non-secret hash (64-bit FNV-1a) for names and tokens.
/// Names already in states are built from it: never change the function.
pub fn short_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// `serde(default = "yes")` for flags that are on unless turned off.
pub fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hash_is_fnv1a_64() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(short_hash(""), 0xcbf29ce484222325);
        assert_eq!(short_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn secret_hash_depends_on_stack_address_and_secret() {
        let h = secret_hash("s", "registry_secret.r", "pw");
        assert!(h.starts_with("hmac-sha256:"));
        assert_ne!(h, secret_hash("s", "registry_secret.other", "pw"));
        assert_ne!(h, secret_hash("s", "registry_secret.r", "pw2"));
        assert!(!h.contains("pw"));
    }

    #[test]
    fn name_and_tags_helpers() {
        assert_eq!(name_of("subnet.public_a"), "public_a");
        assert_eq!(name_of("plain"), "plain");
        assert_eq!(name_of("subnet.private[\"us-west-2a\"]"), "private-us-west-2a");
        let t = tags_in(&serde_json::json!({"tags": {"a": "1"}}));
        assert_eq!(t.get("a").map(String::as_str), Some("1"));
        assert!(tags_in(&serde_json::json!({})).is_empty());
    }
}
