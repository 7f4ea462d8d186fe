//! `slipway import DIR ADDR ID`: bring one existing cloud object under a
//! resource already declared in the stack, like `terraform import`. It reads
//! the cloud and writes only the object's ownership tags (this state's lineage
//! and the address); the resource is protected from destroy and replacement
//! until the stack says `protect = false`.

use std::path::PathBuf;

use serde_json::json;

use super::{ctx_for, load_stack, open_state, parse_timeout, store_for, CmdError, Exit};
use crate::providers::{ReadRequest, Registry};
use crate::state::{file, lock, ResourceState, State};

pub struct ImportArgs {
    pub dir: PathBuf,
    pub address: String,
    pub id: String,
    pub vars: Vec<String>,
    pub state: Option<PathBuf>,
    pub lock_timeout: Option<String>,
}

pub async fn run(a: &ImportArgs, registry: &Registry) -> Exit {
    let loaded = load_stack(&a.dir, &a.vars, registry)?;
    let r = loaded.stack.resource(&a.address).ok_or_else(|| {
        let hint = crate::path::did_you_mean(&a.address, loaded.stack.resources.iter().map(|r| r.address.as_str()))
            .map(|s| format!(" Did you mean `{s}`?"))
            .unwrap_or_default();
        CmdError::Other(format!(
            "`{}` is not declared in {}: declare it first, then import.{hint}",
            a.address,
            a.dir.display()
        ))
    })?;
    if r.kind == "data" {
        return Err(CmdError::Other(format!(
            "{} is a data resource: it has no cloud object; nothing to import",
            a.address
        )));
    }
    let kind = registry
        .get(&r.kind)
        .ok_or_else(|| CmdError::Other(format!("unknown kind `{}`", r.kind)))?;
    let store = store_for(&loaded.stack, a.state.as_deref()).await?;
    let _lock = store.lock("import", parse_timeout(a.lock_timeout.as_deref())?).await?;
    let mut ctx = ctx_for(
        &loaded.stack.name,
        loaded.stack.region.clone(),
        loaded.stack.kubernetes.clone(),
    );
    ctx.clusters = super::cluster_names(&loaded.stack, &loaded.variables, None);
    let (state, _) = open_state(&store, &loaded.stack.name, registry, &ctx).await?;
    ctx.clusters = super::cluster_names(&loaded.stack, &loaded.variables, state.as_ref());
    let mut state = state.unwrap_or_else(|| State::new(&loaded.stack.name));
    if let Some(have) = state.resources.get(&a.address) {
        return Err(CmdError::Other(format!(
            "{} is already in the state (ID {}); `slipway state rm {}` first to import another object",
            a.address, have.id, a.address
        )));
    }
    let inputs = kind.complete(&loaded.stack.name, &a.address, &r.config);
    // A Kubernetes resource's objects are named by its config: the ID to give
    // is the one its first object has.
    if let Some(first) = inputs.get("manifests").and_then(|m| m.get(0)) {
        let want = crate::providers::k8s::project::id_of(std::slice::from_ref(first));
        if a.id != want {
            return Err(CmdError::Other(format!(
                "{} renders {want}; import it with that ID (`slipway import {} {} {want}`)",
                a.address,
                a.dir.display(),
                a.address
            )));
        }
    }
    let attributes = json!({});
    let req = ReadRequest {
        address: &a.address,
        id: &a.id,
        inputs: &inputs,
        attributes: &attributes,
    };
    let live = kind
        .read_many(&ctx, &[req])
        .await
        .map_err(|e| CmdError::Other(format!("reading {} {}: {e}", r.kind, a.id)))?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| {
            CmdError::Other(format!(
                "no {} with ID {} was found; nothing was imported",
                r.kind, a.id
            ))
        })?;
    state.resources.insert(
        a.address.clone(),
        ResourceState {
            kind: r.kind.clone(),
            id: live.id.clone(),
            inputs: live.inputs.clone(),
            attributes: live.attributes.clone(),
            dependencies: loaded.graph.dependencies(&a.address),
            sensitive_hashes: Default::default(),
            protect: r.protect != Some(false),
        },
    );
    // The object now belongs to this address of this state: its ownership
    // tags say so (nothing else in the cloud changes).
    let ctx = ctx.with_lineage(&state.lineage);
    kind.retag(&ctx, &a.address, &live, None).await.map_err(|e| {
        CmdError::Other(format!(
            "tagging {} as {}: {e}; nothing was imported",
            live.id, a.address
        ))
    })?;
    state.serial += 1;
    store.write(&state).await?;
    println!(
        "Imported {} ({}). The cloud was not changed beyond its ownership tags.",
        a.address, live.id
    );
    if r.protect != Some(false) {
        println!(
            "It is protected: destroy and replacement are refused until [{}] says `protect = false`.",
            a.address
        );
    }
    println!(
        "Run `slipway plan {}` to see how it differs from the stack.",
        a.dir.display()
    );
    Ok(0)
}

/// `slipway import eksctl`: what to import and where to write it.
pub struct EksctlArgs {
    pub cluster: Option<String>,
    pub region: Option<String>,
    pub config: Option<PathBuf>,
    pub out: PathBuf,
    pub force: bool,
    pub state: Option<PathBuf>,
}

/// Discover an eksctl cluster, write a stack directory and a state that
/// knows every object, all protected. Changes nothing in the cloud but the
/// objects' ownership tags; writes nothing unless everything was read.
pub async fn run_eksctl(a: &EksctlArgs, registry: &Registry) -> Exit {
    use crate::import::{self, eksctl};
    let target = match &a.config {
        Some(p) => {
            let mut t = eksctl::read_config(p).map_err(|e| CmdError::Other(format!("{e}; nothing was written")))?;
            if let Some(c) = &a.cluster {
                if *c != t.cluster {
                    return Err(CmdError::Other(format!(
                        "--cluster {c} differs from metadata.name {} in {}",
                        t.cluster,
                        p.display()
                    )));
                }
            }
            if let Some(r) = &a.region {
                t.region = r.clone();
            }
            t
        }
        None => eksctl::Target {
            cluster: a.cluster.clone().ok_or_else(|| {
                CmdError::Other("say which cluster: --cluster NAME (or --config cluster.yaml)".into())
            })?,
            region: a
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .ok_or_else(|| CmdError::Other("say where: --region REGION (or --config cluster.yaml)".into()))?,
            nodegroups: None,
        },
    };
    if a.out.exists() && !a.force {
        return Err(CmdError::Other(format!(
            "{} already exists; pass --force to replace its .toml files, or choose another --out. Nothing was written",
            a.out.display()
        )));
    }
    let stack_name = if crate::stack::load::is_name(&target.cluster) {
        target.cluster.clone()
    } else {
        import::snake(&target.cluster)
    };
    let state_file = a
        .state
        .clone()
        .unwrap_or_else(|| PathBuf::from("state").join(format!("{stack_name}.json")));
    if let Some(have) = file::read(&state_file)? {
        if !have.resources.is_empty() && !a.force {
            return Err(CmdError::Other(format!(
                "{} already holds {} resources; pass --force to replace it (the old one is kept as .backup), or --state FILE. Nothing was written",
                state_file.display(),
                have.resources.len()
            )));
        }
    }

    let ctx = ctx_for(&stack_name, Some(target.region.clone()), None);
    let aws = ctx.aws().await.map_err(|e| CmdError::Other(e.to_string()))?;
    let found = eksctl::discover(&aws, &target)
        .await
        .map_err(|e| CmdError::Other(e.to_string()))?;
    let (mut items, gone) = import::read_all(&ctx, registry, found.found)
        .await
        .map_err(|e| CmdError::Other(format!("{e}; nothing was written")))?;
    let mut notes = found.notes;
    for g in gone {
        notes.push(format!("{} {} ({}) no longer exists: skipped", g.kind, g.id, g.origin));
    }
    import::link(&mut items);

    let source = if found.stacks.is_empty() {
        "the EKS API only (no eksctl CloudFormation stacks)".to_string()
    } else {
        format!(
            "eksctl's CloudFormation stacks {} and the EKS API",
            found.stacks.join(", ")
        )
    };
    let header = vec![
        format!(
            "Imported by `slipway import eksctl` from EKS cluster {} in {}, through {source}.",
            target.cluster, target.region
        ),
        "Every resource below is protected: destroy and replacement are refused until it says `protect = false`."
            .into(),
    ];
    let text = import::write::stack_file(&header, &stack_name, &target.region, &items, &found.unmodelled);

    // Write beside the target, check that it loads, then move it in place.
    let tmp = sibling_dir(&a.out, "import-tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let werr = |e: std::io::Error| CmdError::Other(format!("writing {}: {e}", a.out.display()));
    std::fs::create_dir_all(&tmp).map_err(werr)?;
    std::fs::write(tmp.join("main.toml"), &text).map_err(werr)?;
    let loaded = match load_stack(&tmp, &[], registry) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(CmdError::Other(format!(
                "the generated stack does not load (a bug in slipway; nothing was written):\n{e}"
            )));
        }
    };
    let mut state = State::new(&stack_name);
    for it in &items {
        let addr = it.found.address();
        state.resources.insert(
            addr.clone(),
            ResourceState {
                kind: it.found.kind.clone(),
                id: it.live.id.clone(),
                inputs: it.live.inputs.clone(),
                attributes: it.live.attributes.clone(),
                dependencies: loaded.graph.dependencies(&addr),
                sensitive_hashes: Default::default(),
                protect: true,
            },
        );
    }
    state.serial = 1;
    let _lock = lock::acquire(&state_file, "import", None)?;
    // Each object now belongs to this state: its ownership tags say so, so
    // later updates and deletes can prove it (nothing else is changed).
    let owned = ctx.with_lineage(&state.lineage);
    for it in &items {
        let addr = it.found.address();
        let Some(kind) = registry.get(&it.found.kind) else {
            continue;
        };
        if let Err(e) = kind.retag(&owned, &addr, &it.live, None).await {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(CmdError::Other(format!(
                "tagging {} as {addr}: {e}; no stack or state was written (objects tagged so far \
                 carry tags naming a state that does not exist, and a new import replaces them)",
                it.live.id
            )));
        }
    }
    if a.out.exists() {
        for e in std::fs::read_dir(&a.out).map_err(werr)?.flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                std::fs::remove_file(e.path()).map_err(werr)?;
            }
        }
        std::fs::rename(tmp.join("main.toml"), a.out.join("main.toml")).map_err(werr)?;
        let _ = std::fs::remove_dir_all(&tmp);
    } else {
        if let Some(p) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p).map_err(werr)?;
        }
        std::fs::rename(&tmp, &a.out).map_err(werr)?;
    }
    file::write(&state_file, &state)?;

    println!(
        "Imported {} resources of EKS cluster {} ({}) from {source}. The cloud was not changed beyond their ownership tags.",
        items.len(),
        target.cluster,
        target.region
    );
    let width = items.iter().map(|i| i.found.address().len()).max().unwrap_or(0);
    for it in &items {
        println!(
            "  {:<width$}  {}  ({})",
            it.found.address(),
            it.live.id,
            it.found.origin
        );
    }
    if !found.folded.is_empty() {
        println!("Written inside the resources above ({}):", found.folded.len());
        for f in &found.folded {
            println!("  {f}");
        }
    }
    if !found.unmodelled.is_empty() {
        println!(
            "Not modelled by slipway, left as they are ({}; also listed at the top of {}):",
            found.unmodelled.len(),
            a.out.join("main.toml").display()
        );
        for u in &found.unmodelled {
            println!("  {} {} ({})", u.what, u.id, u.origin);
        }
    }
    for n in &notes {
        println!("Note: {n}");
    }
    println!(
        "Wrote {} and {}. Every resource is protected. Run `slipway plan {} --detailed-exitcode`: it should show no changes.",
        a.out.join("main.toml").display(),
        state_file.display(),
        a.out.display()
    );
    Ok(0)
}

fn sibling_dir(dir: &std::path::Path, tag: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.{tag}.{}", std::process::id()))
}
