//! Read a stack directory: every `*.toml` file, parsed with spans, merged into
//! one `Stack`. Structural problems (bad TOML, duplicates, malformed engine
//! fields) are reported here; kinds and references are checked in `validate`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::error::{StackError, StackErrors};
use super::node::{self, Key, Node, NodeKind};
use super::source::{Sources, Span};
use super::template::{self, Part, Ref};
use super::{Local, LookupDecl, Moved, Output, RefSite, Resource, Stack, Variable, META_FIELDS};
use crate::path::did_you_mean;

struct Loader {
    sources: Sources,
    errors: Vec<StackError>,
}

impl Loader {
    fn err(&mut self, file: usize, range: std::ops::Range<usize>, msg: impl Into<String>) -> &mut StackError {
        let loc = self.sources.locate(&Span { file, range });
        self.errors.push(StackError::new(Some(loc), msg));
        self.errors.last_mut().expect("just pushed")
    }
}

/// An AWS region name of any partition: an area (`us`, `eu`, `ap`, `cn`,
/// `us-gov`, `us-iso`...), a direction (`east`, `southeast`...) and a number.
pub fn is_region(s: &str) -> bool {
    const AREAS: &[&str] = &[
        "us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx", "cn", "us-gov", "us-iso", "us-isob", "eu-isoe",
        "us-isof", "eusc",
    ];
    const DIRECTIONS: &[&str] = &[
        "east",
        "west",
        "north",
        "south",
        "central",
        "northeast",
        "northwest",
        "southeast",
        "southwest",
    ];
    let Some((rest, number)) = s.rsplit_once('-') else {
        return false;
    };
    let Some((area, direction)) = rest.rsplit_once('-') else {
        return false;
    };
    AREAS.contains(&area)
        && DIRECTIONS.contains(&direction)
        && !number.is_empty()
        && number.len() <= 2
        && number.chars().all(|c| c.is_ascii_digit())
}

pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Load every `*.toml` file of `dir` into a stack.
pub fn load(dir: &Path) -> Result<Stack, StackErrors> {
    crate::operator::add_repository_of(dir);
    load_dir(dir, false)
}

/// Load a module's directory (`[module.NAME] source`): stack files without
/// `[stack]`, `[kubernetes]` or `[[moved]]`, which belong to the stack
/// using it; its `[variables]` are its inputs and its `[outputs]` what the
/// stack reads of it.
pub fn load_module(dir: &Path) -> Result<Stack, StackErrors> {
    load_dir(dir, true)
}

fn load_dir(dir: &Path, module: bool) -> Result<Stack, StackErrors> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_string()
        } else if dir.is_file() {
            "is a file, not a stack directory".to_string()
        } else {
            format!("cannot be read: {e}")
        };
        StackError::new(None, format!("stack directory {} {what}", dir.display()))
            .with_help("pass the directory holding the stack's .toml files, e.g. `slipway plan stacks/blog`")
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(
            StackError::new(None, format!("stack directory {} has no .toml files", dir.display()))
                .with_help("a stack is one or more .toml files declaring `[stack]` and resources such as `[data.a]`")
                .into(),
        );
    }

    let mut l = Loader {
        sources: Sources::default(),
        errors: Vec::new(),
    };
    let mut trees = Vec::new();
    for p in &paths {
        let text = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                l.errors
                    .push(StackError::new(None, format!("cannot read {}: {e}", p.display())));
                continue;
            }
        };
        let file = l.sources.add(p.clone(), text);
        match node::parse(&l.sources.files[file].text) {
            Ok(n) => trees.push((file, n)),
            Err(e) => {
                let range = e.span().unwrap_or(0..0);
                let msg = format!("invalid TOML: {}", e.message().trim_end());
                l.err(file, range, msg);
            }
        }
    }
    if !l.errors.is_empty() {
        return Err(StackErrors(l.errors));
    }
    // `${env}` is the selected environment, written into strings before
    // anything else reads them.
    let env = selected_env();
    for (file, tree) in &mut trees {
        substitute_env(&mut l, *file, tree, env.as_deref());
    }
    if !l.errors.is_empty() {
        return Err(StackErrors(l.errors));
    }

    let mut stack = Stack {
        dir: dir.to_path_buf(),
        name: String::new(),
        state: None,
        backend: None,
        region: None,
        kubernetes: None,
        sources: Sources::default(),
        variables: BTreeMap::new(),
        resources: Vec::new(),
        index: HashMap::new(),
        outputs: Vec::new(),
        locals: BTreeMap::new(),
        lookups: Vec::new(),
        instances: BTreeMap::new(),
        moved: Vec::new(),
        modules: Vec::new(),
        env: None,
        base_name: String::new(),
        values: Vec::new(),
    };
    let mut stack_table: Option<Span> = None;
    let mut backend_table: Option<Span> = None;
    let only_backend = |v: &Node| v.as_table().is_some_and(|t| t.len() == 1 && t[0].0.name == "backend");
    for (file, tree) in &trees {
        let Some(top) = tree.as_table() else { continue };
        for (key, value) in top {
            if module && matches!(key.name.as_str(), "stack" | "kubernetes" | "moved") {
                l.err(
                    *file,
                    key.span.clone(),
                    format!(
                        "a module cannot declare [{}]: it belongs to the stack that uses the module",
                        key.name
                    ),
                );
                continue;
            }
            match key.name.as_str() {
                // A file holding only [stack.backend] (like Terraform's
                // backend.tf) goes with the [stack] of another file.
                "stack" if only_backend(value) => {
                    if let Some(prev) = &backend_table {
                        let prev = l.sources.locate(prev);
                        l.err(
                            *file,
                            key.span.clone(),
                            format!("a second [stack.backend] (the first is at {prev})"),
                        )
                        .help = Some("declare [stack.backend] in one file only".into());
                        continue;
                    }
                    backend_table = Some(Span {
                        file: *file,
                        range: key.span.clone(),
                    });
                    load_stack_table(&mut l, &mut stack, *file, key, value);
                }
                "stack" => {
                    if let Some(prev) = &stack_table {
                        let prev = l.sources.locate(prev);
                        l.err(
                            *file,
                            key.span.clone(),
                            format!("a second [stack] table (the first is at {prev})"),
                        )
                        .help = Some("declare [stack] in one file only".into());
                        continue;
                    }
                    stack_table = Some(Span {
                        file: *file,
                        range: key.span.clone(),
                    });
                    load_stack_table(&mut l, &mut stack, *file, key, value);
                }
                "variables" => load_variables(&mut l, &mut stack, *file, value),
                "outputs" => load_outputs(&mut l, &mut stack, *file, value),
                "locals" => load_locals(&mut l, &mut stack, *file, value),
                "lookup" => load_lookups(&mut l, &mut stack, *file, value),
                "kubernetes" => load_kubernetes(&mut l, &mut stack, *file, value),
                "moved" => load_moved(&mut l, &mut stack, *file, value),
                "module" => load_modules(&mut l, &mut stack, *file, value, dir),
                kind => load_kind(&mut l, &mut stack, *file, kind, key, value),
            }
        }
    }
    if stack.name.is_empty() {
        stack.name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "default".to_string());
    }
    if module {
        stack.base_name = stack.name.clone();
        stack.sources = l.sources;
        return if l.errors.is_empty() {
            Ok(stack)
        } else {
            Err(StackErrors(l.errors))
        };
    }
    if let Some(env) = env {
        // One environment of a stack is an instance of its own: its state,
        // ownership tags and default names say `<stack>-<env>`.
        match load_values(&dir.join("env").join(format!("{env}.toml")), dir.join("env").is_dir()) {
            Ok(v) => stack.values.extend(v),
            Err(e) => l.errors.push(e),
        }
        stack.base_name = stack.name.clone();
        stack.name = format!("{}-{env}", stack.name);
        stack.env = Some(env);
    } else {
        stack.base_name = stack.name.clone();
    }
    for f in &selection().var_files {
        match load_values(f, true) {
            Ok(v) => stack.values.extend(v),
            Err(e) => l.errors.push(e),
        }
    }
    expand_local_refs(&mut stack);
    stack.sources = l.sources;
    if l.errors.is_empty() {
        Ok(stack)
    } else {
        Err(StackErrors(l.errors))
    }
}

fn load_stack_table(l: &mut Loader, stack: &mut Stack, file: usize, key: &Key, value: &Node) {
    let Some(t) = value.as_table() else {
        l.err(
            file,
            key.span.clone(),
            format!("`stack` must be a table, found {}", value.type_name()),
        );
        return;
    };
    for (k, v) in t {
        match (k.name.as_str(), &v.kind) {
            ("name", NodeKind::Str(s)) if is_name(s) => stack.name = s.clone(),
            ("name", _) => {
                l.err(
                    file,
                    v.span.clone(),
                    "stack name must be a string of letters, digits, `_` and `-`",
                );
            }
            ("state", NodeKind::Str(s)) if !s.is_empty() => stack.state = Some(s.into()),
            ("state", _) => {
                l.err(file, v.span.clone(), "`state` must be a non-empty string path");
            }
            ("region", NodeKind::Str(s)) if is_region(s) => stack.region = Some(s.clone()),
            ("region", _) => {
                l.err(
                    file,
                    v.span.clone(),
                    format!(
                        "{}: not an AWS region name; regions are like \"eu-west-1\", \"us-gov-west-1\", \"cn-north-1\"",
                        v.to_json()
                    ),
                );
            }
            ("backend", NodeKind::Table(_)) if stack.backend.is_some() => {
                l.err(file, k.span.clone(), "a second [stack.backend]").help =
                    Some("declare [stack.backend] in one file only".into());
            }
            ("backend", NodeKind::Table(_)) => load_backend(l, stack, file, v),
            ("backend", _) => {
                l.err(
                    file,
                    v.span.clone(),
                    "`backend` must be a table: [stack.backend] type = \"s3\", bucket = \"...\"",
                );
            }
            (other, _) => {
                let e = l.err(file, k.span.clone(), format!("unknown field `{other}` in [stack]"));
                e.help = Some(match did_you_mean(other, ["name", "state", "region", "backend"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "[stack] accepts `name`, `state`, `region` and [stack.backend]".into(),
                });
            }
        }
    }
}

/// `[stack.backend]`: where the state lives.
fn load_backend(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let Some(t) = value.as_table() else { return };
    let mut b = super::Backend::default();
    let mut type_span = value.span.clone();
    for (k, v) in t {
        let text = match &v.kind {
            NodeKind::Str(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        match (k.name.as_str(), text) {
            ("type", Some(s)) if s == "s3" || s == "local" => {
                b.kind = s;
                type_span = v.span.clone();
            }
            ("type", _) => {
                l.err(file, v.span.clone(), "backend `type` must be \"s3\" or \"local\"");
            }
            ("bucket", Some(s)) => b.bucket = Some(s),
            ("key", Some(s)) => b.key = Some(s),
            ("region", Some(s)) => b.region = Some(s),
            ("profile", Some(s)) => b.profile = Some(s),
            ("role_arn", Some(s)) => b.role_arn = Some(s),
            ("lock_lease", Some(s)) => match humantime::parse_duration(&s) {
                Ok(d) if d.as_secs() >= 1 => b.lock_lease = Some(d),
                _ => {
                    l.err(
                        file,
                        v.span.clone(),
                        "`lock_lease` must be a duration of at least a second, e.g. \"60s\"",
                    );
                }
            },
            ("bucket" | "key" | "region" | "profile" | "role_arn" | "lock_lease", None) => {
                l.err(file, v.span.clone(), format!("`{}` must be a non-empty string", k.name));
            }
            (other, _) => {
                let fields = ["type", "bucket", "key", "region", "profile", "role_arn", "lock_lease"];
                let e = l.err(
                    file,
                    k.span.clone(),
                    format!("unknown field `{other}` in [stack.backend]"),
                );
                e.help = Some(match did_you_mean(other, fields) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("[stack.backend] accepts {}", fields.join(", ")),
                });
            }
        }
    }
    if b.kind.is_empty() {
        l.err(
            file,
            value.span.clone(),
            "[stack.backend] needs `type` (\"s3\" or \"local\")",
        );
    } else if b.kind == "s3" && b.bucket.is_none() {
        l.err(file, type_span, "an s3 backend needs `bucket`");
    }
    stack.backend = Some(b);
}

fn load_kubernetes(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let Some(t) = value.as_table() else {
        l.err(
            file,
            value.span.clone(),
            "`kubernetes` must be a table with `kubeconfig` and optional `context`",
        );
        return;
    };
    let (mut path, mut context) = (None, None);
    for (k, v) in t {
        match (k.name.as_str(), v.as_str()) {
            ("kubeconfig", Some(s)) => path = Some(s.to_string()),
            ("context", Some(s)) => context = Some(s.to_string()),
            ("kubeconfig" | "context", None) => {
                l.err(file, v.span.clone(), format!("`{}` must be a string", k.name));
            }
            (other, _) => {
                let e = l.err(file, k.span.clone(), format!("unknown field `{other}` in [kubernetes]"));
                e.help = Some("[kubernetes] accepts `kubeconfig` and `context`".into());
            }
        }
    }
    match path {
        Some(p) => stack.kubernetes = Some((p, context)),
        None => {
            l.err(file, value.span.clone(), "[kubernetes] needs `kubeconfig = \"path\"`");
        }
    }
}

fn load_variables(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let Some(t) = value.as_table() else {
        l.err(file, value.span.clone(), "`variables` must be a table");
        return;
    };
    for (k, v) in t {
        let span = Span {
            file,
            range: k.span.clone(),
        };
        if !is_name(&k.name) {
            l.err(
                file,
                k.span.clone(),
                format!("`{}` is not a valid variable name", k.name),
            );
            continue;
        }
        if stack.variables.contains_key(&k.name) {
            l.err(file, k.span.clone(), format!("variable `{}` is declared twice", k.name));
            continue;
        }
        let mut var = Variable {
            name: k.name.clone(),
            default: None,
            description: None,
            sensitive: false,
            span,
        };
        match &v.kind {
            NodeKind::Table(entries) => {
                for (ek, ev) in entries {
                    match (ek.name.as_str(), &ev.kind) {
                        ("default", _) => var.default = Some(ev.to_json()),
                        ("description", NodeKind::Str(s)) => var.description = Some(s.clone()),
                        ("sensitive", NodeKind::Bool(b)) => var.sensitive = *b,
                        ("description" | "sensitive", _) => {
                            l.err(
                                file,
                                ev.span.clone(),
                                format!("wrong type for `{}`: found {}", ek.name, ev.type_name()),
                            );
                        }
                        (other, _) => {
                            let e = l.err(
                                file,
                                ek.span.clone(),
                                format!("unknown field `{other}` in variable `{}`", k.name),
                            );
                            e.help = Some(match did_you_mean(other, ["default", "description", "sensitive"]) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => "a variable accepts `default`, `description` and `sensitive`".into(),
                            });
                        }
                    }
                }
            }
            _ => var.default = Some(v.to_json()),
        }
        stack.variables.insert(k.name.clone(), var);
    }
}

fn load_outputs(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let Some(t) = value.as_table() else {
        l.err(file, value.span.clone(), "`outputs` must be a table");
        return;
    };
    for (k, v) in t {
        if stack.outputs.iter().any(|o| o.name == k.name) {
            l.err(file, k.span.clone(), format!("output `{}` is declared twice", k.name));
            continue;
        }
        let (value_node, sensitive) = match v.get("value") {
            Some(inner) => {
                let sensitive = matches!(v.get("sensitive").map(|n| &n.kind), Some(NodeKind::Bool(true)));
                for (ek, _) in v.as_table().unwrap_or(&[]) {
                    if !["value", "description", "sensitive"].contains(&ek.name.as_str()) {
                        l.err(
                            file,
                            ek.span.clone(),
                            format!("unknown field `{}` in output `{}`", ek.name, k.name),
                        )
                        .help = Some("an output accepts `value`, `description` and `sensitive`".into());
                    }
                }
                (inner, sensitive)
            }
            None => (v, false),
        };
        let refs = collect_refs(l, file, value_node);
        stack.outputs.push(Output {
            name: k.name.clone(),
            value: value_node.to_json(),
            sensitive,
            refs,
            span: Span {
                file,
                range: k.span.clone(),
            },
        });
    }
}

fn load_kind(l: &mut Loader, stack: &mut Stack, file: usize, kind: &str, key: &Key, value: &Node) {
    let Some(t) = value.as_table() else {
        l.err(
            file,
            key.span.clone(),
            format!("`{kind}` must be a table of resources like [{kind}.NAME]"),
        );
        return;
    };
    for (k, body) in t {
        let address = format!("{kind}.{}", k.name);
        let span = Span {
            file,
            range: k.span.clone(),
        };
        if !is_name(&k.name) {
            l.err(
                file,
                k.span.clone(),
                format!("`{}` is not a valid resource name", k.name),
            )
            .help = Some("use letters, digits, `_` and `-`, not starting with a digit".into());
            continue;
        }
        let Some(entries) = body.as_table() else {
            l.err(
                file,
                k.span.clone(),
                format!("resource `{address}` must be a table, found {}", body.type_name()),
            );
            continue;
        };
        if let Some(&i) = stack.index.get(&address) {
            let prev = l.sources.locate(&stack.resources[i].span);
            l.err(
                file,
                k.span.clone(),
                format!("resource `{address}` is declared twice (first at {prev})"),
            );
            continue;
        }
        let mut depends_on = Vec::new();
        let mut create_before_destroy = None;
        let mut timeouts = BTreeMap::new();
        let mut for_each = None;
        let mut protect = None;
        let mut config = serde_json::Map::new();
        for (ek, ev) in entries {
            match ek.name.as_str() {
                "depends_on" => depends_on = load_depends_on(l, file, ev),
                "for_each" => {
                    let refs = collect_refs(l, file, ev);
                    for_each = Some((
                        ev.to_json(),
                        refs,
                        Span {
                            file,
                            range: ev.span.clone(),
                        },
                    ));
                }
                "protect" => match &ev.kind {
                    NodeKind::Bool(b) => protect = Some(*b),
                    _ => {
                        l.err(file, ev.span.clone(), "protect must be true or false");
                    }
                },
                "timeouts" => match ev.as_table() {
                    Some(t) => {
                        for (tk, tv) in t {
                            let ok_key = ["create", "update", "delete"].contains(&tk.name.as_str());
                            match (ok_key, tv.as_str().map(humantime::parse_duration)) {
                                (true, Some(Ok(d))) => {
                                    timeouts.insert(tk.name.clone(), (d.as_millis() as u64).max(1));
                                }
                                (false, _) => {
                                    l.err(file, tk.span.clone(), format!("unknown timeout `{}`", tk.name))
                                        .help = Some("timeouts has `create`, `update` and `delete`".into());
                                }
                                _ => {
                                    l.err(
                                        file,
                                        tv.span.clone(),
                                        "a timeout is a duration such as \"30m\" or \"1h30m\"",
                                    );
                                }
                            }
                        }
                    }
                    None => {
                        l.err(
                            file,
                            ev.span.clone(),
                            "timeouts must be a table like { create = \"30m\" }",
                        );
                    }
                },
                "lifecycle" => match ev.get("create_before_destroy").map(|n| &n.kind) {
                    Some(NodeKind::Bool(b)) if ev.as_table().is_some_and(|t| t.len() == 1) => {
                        create_before_destroy = Some(*b)
                    }
                    _ => {
                        l.err(
                            file,
                            ev.span.clone(),
                            "lifecycle must be a table `{ create_before_destroy = true|false }`",
                        );
                    }
                },
                _ => {
                    config.insert(ek.name.clone(), ev.to_json());
                }
            }
        }
        let mut refs = Vec::new();
        for (ek, ev) in entries {
            if !META_FIELDS.contains(&ek.name.as_str()) {
                refs.extend(collect_refs(l, file, ev));
            }
        }
        stack.index.insert(address.clone(), stack.resources.len());
        stack.resources.push(Resource {
            address,
            module: String::new(),
            kind: kind.to_string(),
            name: k.name.clone(),
            span,
            body: body.clone(),
            file,
            config: Value::Object(config),
            refs,
            depends_on,
            create_before_destroy,
            timeouts,
            protect,
            for_each,
        });
    }
}

/// `depends_on = ["kind.name", ...]`.
fn load_depends_on(l: &mut Loader, file: usize, ev: &Node) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    match &ev.kind {
        NodeKind::Array(items) => {
            for it in items {
                match it.as_str() {
                    Some(s) => out.push((
                        s.to_string(),
                        Span {
                            file,
                            range: it.span.clone(),
                        },
                    )),
                    None => {
                        l.err(
                            file,
                            it.span.clone(),
                            "depends_on entries must be addresses like \"kind.name\"",
                        );
                    }
                }
            }
        }
        _ => {
            l.err(
                file,
                ev.span.clone(),
                "depends_on must be a list of addresses like [\"kind.name\"]",
            );
        }
    }
    out
}

/// `[module.NAME]`: `source` (a directory, relative to this file's),
/// `inputs`, `for_each`, `depends_on`.
fn load_modules(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node, dir: &Path) {
    let Some(t) = value.as_table() else {
        l.err(
            file,
            value.span.clone(),
            "`module` must be a table of [module.NAME] tables",
        );
        return;
    };
    for (k, body) in t {
        let span = Span {
            file,
            range: k.span.clone(),
        };
        if !is_name(&k.name) {
            l.err(file, k.span.clone(), format!("`{}` is not a valid module name", k.name));
            continue;
        }
        if stack.modules.iter().any(|m| m.name == k.name) {
            l.err(file, k.span.clone(), format!("module `{}` is declared twice", k.name));
            continue;
        }
        let Some(entries) = body.as_table() else {
            l.err(
                file,
                k.span.clone(),
                format!("module `{}` must be a table with `source`", k.name),
            );
            continue;
        };
        let mut decl = super::ModuleDecl {
            name: k.name.clone(),
            within: String::new(),
            source: String::new(),
            base: dir.to_path_buf(),
            inputs: BTreeMap::new(),
            for_each: None,
            depends_on: Vec::new(),
            span,
        };
        for (ek, ev) in entries {
            match (ek.name.as_str(), &ev.kind) {
                ("source", NodeKind::Str(s)) if !s.is_empty() && !s.contains("${") => decl.source = s.clone(),
                ("source", _) => {
                    l.err(
                        file,
                        ev.span.clone(),
                        "`source` must be a directory path such as \"../../modules/app\"",
                    );
                }
                ("inputs", NodeKind::Table(inputs)) => {
                    for (ik, iv) in inputs {
                        collect_refs(l, file, iv);
                        decl.inputs.insert(
                            ik.name.clone(),
                            (
                                iv.to_json(),
                                Span {
                                    file,
                                    range: ik.span.clone(),
                                },
                            ),
                        );
                    }
                }
                ("inputs", _) => {
                    l.err(
                        file,
                        ev.span.clone(),
                        "`inputs` must be a table: inputs = { name = \"web\" }",
                    );
                }
                ("for_each", _) => {
                    collect_refs(l, file, ev);
                    decl.for_each = Some((
                        ev.to_json(),
                        Span {
                            file,
                            range: ev.span.clone(),
                        },
                    ));
                }
                ("depends_on", _) => decl.depends_on = load_depends_on(l, file, ev),
                (other, _) => {
                    let fields = ["source", "inputs", "for_each", "depends_on"];
                    let e = l.err(
                        file,
                        ek.span.clone(),
                        format!("unknown field `{other}` in module `{}`", k.name),
                    );
                    e.help = Some(match did_you_mean(other, fields) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "a module takes {}; its variables are set in `inputs`",
                            fields.join(", ")
                        ),
                    });
                }
            }
        }
        if decl.source.is_empty() {
            l.err(
                file,
                k.span.clone(),
                format!("module `{}` needs `source = \"DIR\"`", k.name),
            );
            continue;
        }
        stack.modules.push(decl);
    }
}

/// Every `${...}` inside a node, with spans; malformed ones become errors
/// at the line and column inside the string.
fn collect_refs(l: &mut Loader, file: usize, n: &Node) -> Vec<RefSite> {
    let mut out = Vec::new();
    let mut stack = vec![n];
    while let Some(n) = stack.pop() {
        match &n.kind {
            NodeKind::Str(s) if s.contains("${") => match template::parse_at(s) {
                Ok(parts) => {
                    for p in parts {
                        let text = match &p {
                            Part::Ref(_, t) | Part::Expr(_, t) => t.clone(),
                            Part::Lit(_) => continue,
                        };
                        let range = ref_range(&l.sources.files[file].text, n.span.clone(), &text);
                        for r in p.refs() {
                            out.push(RefSite {
                                reference: r,
                                text: text.clone(),
                                span: Span {
                                    file,
                                    range: range.clone(),
                                },
                            });
                        }
                    }
                }
                Err(e) => {
                    let at = offset_in_literal(&l.sources.files[file].text, n.span.clone(), s, e.offset);
                    l.err(file, at, e.message);
                }
            },
            NodeKind::Array(a) => stack.extend(a.iter().rev()),
            NodeKind::Table(t) => stack.extend(t.iter().rev().map(|(_, v)| v)),
            _ => {}
        }
    }
    out
}

/// Where byte `offset` of a string's value is in the source: found by the
/// text around it (escapes in the literal shift nothing then); else the
/// literal itself.
fn offset_in_literal(src: &str, lit: std::ops::Range<usize>, value: &str, offset: usize) -> std::ops::Range<usize> {
    let Some(code) = src.get(lit.clone()) else { return lit };
    // The `${` before the offset, and what follows it in the value.
    let open = value[..offset.min(value.len())].rfind("${").unwrap_or(0);
    let tail = &value[open..offset.min(value.len())];
    match code.find(tail) {
        Some(i) => {
            let at = lit.start + i + tail.len();
            at..(at + 1).min(lit.end)
        }
        None => lit,
    }
}

/// The span of `${text}` inside a string literal's span, or the literal's span.
fn ref_range(src: &str, lit: std::ops::Range<usize>, text: &str) -> std::ops::Range<usize> {
    let needle = format!("${{{text}}}");
    src.get(lit.clone())
        .and_then(|s| s.find(&needle))
        .map(|i| lit.start + i..lit.start + i + needle.len())
        .unwrap_or(lit)
}

/// `[locals] name = value`: values (templates like any other) named once
/// and read as `${local.name}`.
fn load_locals(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let Some(t) = value.as_table() else {
        l.err(file, value.span.clone(), "`locals` must be a table");
        return;
    };
    for (k, v) in t {
        if let Some(prev) = stack.locals.get(&k.name) {
            let prev = l.sources.locate(&prev.span);
            l.err(
                file,
                k.span.clone(),
                format!("local `{}` is declared twice (first at {prev})", k.name),
            );
            continue;
        }
        let refs = collect_refs(l, file, v);
        stack.locals.insert(
            k.name.clone(),
            Local {
                value: v.to_json(),
                refs,
                span: Span {
                    file,
                    range: k.span.clone(),
                },
            },
        );
    }
}

/// `[lookup.KIND.NAME]` tables.
fn load_lookups(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let Some(kinds) = value.as_table() else {
        l.err(
            file,
            value.span.clone(),
            "`lookup` must be a table of [lookup.KIND.NAME] tables",
        );
        return;
    };
    for (kind, names) in kinds {
        let Some(known) = crate::lookup::kind(&kind.name) else {
            let all: Vec<&str> = crate::lookup::KINDS.iter().map(|k| k.0).collect();
            let help = match did_you_mean(&kind.name, all.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("lookups: {}", all.join(", ")),
            };
            l.err(file, kind.span.clone(), format!("unknown lookup kind `{}`", kind.name))
                .help = Some(help);
            continue;
        };
        let Some(names) = names.as_table() else {
            l.err(file, names.span.clone(), format!("write [lookup.{}.NAME]", kind.name));
            continue;
        };
        for (name, body) in names {
            if stack.lookups.iter().any(|x| x.kind == kind.name && x.name == name.name) {
                l.err(
                    file,
                    name.span.clone(),
                    format!("lookup.{}.{} is declared twice", kind.name, name.name),
                );
                continue;
            }
            for (field, _) in body.as_table().unwrap_or(&[]) {
                if !known.1.contains(&field.name.as_str()) {
                    let help = if known.1.is_empty() {
                        format!("lookup.{} takes no fields", kind.name)
                    } else {
                        format!("lookup.{} takes {}", kind.name, known.1.join(", "))
                    };
                    l.err(
                        file,
                        field.span.clone(),
                        format!("unknown field `{}` in lookup.{}.{}", field.name, kind.name, name.name),
                    )
                    .help = Some(help);
                }
            }
            let refs = collect_refs(l, file, body);
            stack.lookups.push(LookupDecl {
                kind: kind.name.clone(),
                name: name.name.clone(),
                config: body.to_json(),
                refs,
                span: Span {
                    file,
                    range: name.span.clone(),
                },
            });
        }
    }
}

/// What a `${local.x}` reads, through every local it names: added to the
/// references of the resource or output that uses it, at its use, so the
/// graph orders it after what the local refers to.
pub(crate) fn expand_local_refs(stack: &mut Stack) {
    fn through(locals: &BTreeMap<String, Local>, site: &RefSite, seen: &mut Vec<String>, out: &mut Vec<RefSite>) {
        let Ref::Local(name) = &site.reference else { return };
        if seen.contains(name) {
            return;
        }
        seen.push(name.clone());
        for r in locals.get(name).map(|l| l.refs.as_slice()).unwrap_or(&[]) {
            if !matches!(r.reference, Ref::Local(_)) {
                out.push(RefSite {
                    reference: r.reference.clone(),
                    text: site.text.clone(),
                    span: site.span.clone(),
                });
            }
            through(locals, r, seen, out);
        }
    }
    let locals = stack.locals.clone();
    let expand = |refs: &mut Vec<RefSite>| {
        let mut extra = Vec::new();
        for site in refs.iter() {
            through(&locals, site, &mut Vec::new(), &mut extra);
        }
        refs.extend(extra);
    };
    for r in &mut stack.resources {
        expand(&mut r.refs);
    }
    for o in &mut stack.outputs {
        expand(&mut o.refs);
    }
}

/// An address `kind.name` as written in `[[moved]]`.
fn is_address(s: &str) -> bool {
    super::split_address(s).is_some_and(|(_, k, n)| {
        // `kind.name` or an instance `kind.name["key"]`.
        let n = match n.split_once("[\"") {
            Some((base, key)) if key.ends_with("\"]") && key.len() > 2 => base,
            Some(_) => return false,
            None => n,
        };
        is_name(k) && is_name(n)
    })
}

fn load_moved(l: &mut Loader, stack: &mut Stack, file: usize, value: &Node) {
    let NodeKind::Array(entries) = &value.kind else {
        l.err(
            file,
            value.span.clone(),
            "`moved` must be written as [[moved]] tables with `from` and `to`",
        );
        return;
    };
    for e in entries {
        let Some(t) = e.as_table() else {
            l.err(
                file,
                e.span.clone(),
                "a [[moved]] entry must be a table with `from` and `to`",
            );
            continue;
        };
        let (mut from, mut to) = (None, None);
        for (k, v) in t {
            match (k.name.as_str(), v.as_str()) {
                ("from", Some(a)) if is_address(a) => from = Some(a.to_string()),
                ("to", Some(a)) if is_address(a) => to = Some(a.to_string()),
                ("from" | "to", _) => {
                    l.err(
                        file,
                        v.span.clone(),
                        format!("`{}` must be an address like \"app.web\"", k.name),
                    );
                }
                (other, _) => {
                    let e = l.err(file, k.span.clone(), format!("unknown field `{other}` in [[moved]]"));
                    e.help = Some("[[moved]] has `from` and `to`".into());
                }
            }
        }
        match (from, to) {
            (Some(from), Some(to)) => stack.moved.push(Moved {
                from,
                to,
                span: Span {
                    file,
                    range: e.span.clone(),
                },
            }),
            _ => {
                l.err(file, e.span.clone(), "[[moved]] needs both `from` and `to`");
            }
        }
    }
}

/// What the command line selected for every stack it loads: `--env` and
/// `--var-file`s (set once, at start).
#[derive(Debug, Default, Clone)]
pub struct Selection {
    pub env: Option<String>,
    pub var_files: Vec<std::path::PathBuf>,
}

static SELECTION: std::sync::OnceLock<Selection> = std::sync::OnceLock::new();

/// Select the environment and variable files for this process.
pub fn select(s: Selection) {
    let _ = SELECTION.set(s);
}

fn selection() -> Selection {
    SELECTION.get().cloned().unwrap_or_default()
}

/// `--env`, else `SLIPWAY_ENV`.
fn selected_env() -> Option<String> {
    selection()
        .env
        .or_else(|| std::env::var("SLIPWAY_ENV").ok())
        .filter(|e| !e.is_empty())
}

/// `${env}` replaced in every string of a file; without an environment it
/// is an error at the string.
fn substitute_env(l: &mut Loader, file: usize, n: &mut Node, env: Option<&str>) {
    match &mut n.kind {
        NodeKind::Str(s) if s.contains("${env}") => match env {
            Some(e) => *s = s.replace("${env}", e),
            None => {
                l.err(file, n.span.clone(), "`${env}` needs an environment").help =
                    Some("pass --env NAME (or set SLIPWAY_ENV)".into());
            }
        },
        NodeKind::Array(items) => items.iter_mut().for_each(|i| substitute_env(l, file, i, env)),
        NodeKind::Table(entries) => entries.iter_mut().for_each(|(_, v)| substitute_env(l, file, v, env)),
        _ => {}
    }
}

/// `name = value` lines of a variable file (like a tfvars file), in file
/// order; `required` makes a missing file an error.
fn load_values(path: &Path, required: bool) -> Result<Vec<(String, Value, String)>, StackError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Vec::new()),
        Err(e) => {
            return Err(
                StackError::new(None, format!("cannot read the variable file {}: {e}", path.display()))
                    .with_help("an environment's values live in env/NAME.toml in the stack directory"),
            )
        }
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        StackError::new(None, format!("{}: {}", path.display(), e.to_string().trim_end()))
            .with_help("a variable file holds `name = value` lines")
    })?;
    let source = path.display().to_string();
    table
        .into_iter()
        .map(|(k, v)| {
            let v = serde_json::to_value(&v).map_err(|e| StackError::new(None, format!("{source}: `{k}`: {e}")))?;
            Ok((k, v, source.clone()))
        })
        .collect()
}
