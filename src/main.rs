//! The `slipway` command line: parse flags, run a command, map the outcome
//! to an exit code (0 ok, 1 error, 2 changes present with --detailed-exitcode).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use slipway::commands::{self, apply::RunOpts, plan::PlanArgs, CmdError};

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}; write e.g. 30s, 45m or 1h30m"))
}
use slipway::providers::Registry;

#[derive(Parser)]
#[command(
    name = "slipway",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SLIPWAY_COMMIT"), ")"),
    about = "Infrastructure as code for AWS EKS stacks, with a state file"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The environment (also SLIPWAY_ENV): variable values from env/NAME.toml
    /// in the stack directory, its own state (state/<stack>.NAME.json), `${env}`
    /// in strings, and `<stack>-NAME` in ownership tags and default names.
    #[arg(long, global = true, value_name = "NAME")]
    env: Option<String>,
    /// Log to stderr (also SLIPWAY_LOG): info (each step's start and end),
    /// debug (and every AWS call: service, operation, status, duration,
    /// attempt, error code), trace. Only slipway's own records, never a secret.
    #[arg(long = "log-level", global = true, value_name = "LEVEL",
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: Option<String>,
    /// Variable values from a file of `name = value` lines (repeatable; later
    /// files win; --var and SLIPWAY_VAR_name win over files).
    #[arg(long = "var-file", global = true, value_name = "FILE")]
    var_files: Vec<PathBuf>,
    /// The kubeconfig for every Kubernetes object (the operator's: only this one
    /// may use exec plugins, token files and endpoints of its own; a stack's
    /// `cluster` and `[kubernetes]` are then not used).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Let stacks read this environment variable (`password_env`), beyond
    /// SLIPWAY_SECRET_* (repeatable).
    #[arg(long = "allow-env", global = true, value_name = "NAME")]
    allow_env: Vec<String>,
    /// Where the S3 state lives, over the stack's [stack.backend]: bucket, key,
    /// region, role_arn, profile (repeatable; also SLIPWAY_BACKEND_BUCKET, ...).
    #[arg(long = "backend-config", global = true, value_name = "KEY=VALUE")]
    backend_config: Vec<String>,
    /// Refuse a stack that chooses its own state location (`[stack] state`,
    /// `[stack.backend]`) other than the operator's. On by default when CI=true;
    /// SLIPWAY_LOCKED_BACKEND=0 or 1 decides otherwise.
    #[arg(long, global = true)]
    locked_backend: bool,
}

#[derive(Args, Clone)]
struct StackArgs {
    /// The stack directory (its .toml files).
    dir: PathBuf,
    /// Set a variable: --var name=value (beats SLIPWAY_VAR_name and the default).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Use this state file instead of the stack's.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Wait this long for a held state lock (e.g. 30s, 5m) instead of failing at once.
    #[arg(long, value_name = "DURATION")]
    lock_timeout: Option<String>,
}

impl StackArgs {
    fn plan_args(&self, destroy: bool) -> PlanArgs {
        PlanArgs {
            dir: self.dir.clone(),
            vars: self.vars.clone(),
            state: self.state.clone(),
            lock_timeout: self.lock_timeout.clone(),
            destroy,
            replace: Vec::new(),
            targets: Vec::new(),
            rollout_timeout: None,
        }
    }
}

#[derive(Args, Clone)]
struct StateLocator {
    /// Find the state through this stack directory.
    #[arg(long, value_name = "DIR")]
    stack: Option<PathBuf>,
    /// The state file itself.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Check a stack: syntax, schemas, references, dependency cycles.
    Validate {
        dir: PathBuf,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Show what apply would change.
    Plan {
        #[command(flatten)]
        stack: StackArgs,
        /// Save the plan to FILE for `slipway apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print the plan as JSON (format in README.md).
        #[arg(long)]
        json: bool,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Plan the deletion of everything in the state.
        #[arg(long)]
        destroy: bool,
        /// Print how many cloud API calls the plan made, per service and operation (on stderr).
        #[arg(long)]
        stats: bool,
        /// Write GitLab's Terraform report JSON ({"create","update","delete"}) to FILE.
        #[arg(long, value_name = "FILE")]
        gitlab_report: Option<PathBuf>,
        /// Replace this resource even if nothing changed (repeatable; Terraform's -replace).
        #[arg(long, value_name = "ADDRESS")]
        replace: Vec<String>,
        /// Plan only this resource and what it depends on (repeatable; Terraform's -target).
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
    },
    /// Apply a stack directory, or a plan saved with `plan --out`.
    Apply {
        /// A stack directory or a saved plan file.
        target: PathBuf,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[arg(long, value_name = "DURATION")]
        lock_timeout: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// At most this many resource operations at once.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        parallelism: u32,
        /// Time limit of each operation without its own `timeouts` (e.g. 45m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// How long a Deployment's rollout may take before the apply fails (default 5m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        rollout_timeout: Option<std::time::Duration>,
        /// Write each step's start and finish (seconds) and the wall time as JSON to FILE.
        #[arg(long, value_name = "FILE")]
        timings: Option<PathBuf>,
        /// Replace this resource even if nothing changed (repeatable; Terraform's -replace).
        #[arg(long, value_name = "ADDRESS")]
        replace: Vec<String>,
        /// Apply only this resource and what it depends on (repeatable; Terraform's -target).
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
    },
    /// Delete everything the stack's state holds, in reverse dependency order.
    Destroy {
        #[command(flatten)]
        stack: StackArgs,
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        parallelism: u32,
        /// Time limit of each operation without its own `timeouts` (e.g. 45m).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Destroy only this resource and what depends on it (repeatable; Terraform's -target).
        #[arg(long = "target", value_name = "ADDRESS")]
        targets: Vec<String>,
    },
    /// Compare the live cloud and clusters with the state (and the stack with the
    /// state) without changing anything: exit 0 in sync, 2 drifted, 1 error.
    Drift {
        dir: PathBuf,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Print the report as JSON (format in README.md).
        #[arg(long)]
        json: bool,
        /// Take the state lock while reading (off by default: drift only reads).
        #[arg(long)]
        lock: bool,
        #[arg(long, value_name = "DURATION")]
        lock_timeout: Option<String>,
    },
    /// Bring an existing cloud object under a resource declared in the stack (reads only),
    /// or a whole eksctl cluster: `slipway import eksctl --cluster NAME --region R --out DIR`.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Import {
        #[command(subcommand)]
        from: Option<ImportFrom>,
        /// The stack directory.
        #[arg(required = true)]
        dir: Option<PathBuf>,
        /// The declared resource, e.g. vpc.main.
        #[arg(required = true)]
        address: Option<String>,
        /// The object's ID (VPC ID, role name, ARN, ...).
        #[arg(required = true)]
        id: Option<String>,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[arg(long, value_name = "DURATION")]
        lock_timeout: Option<String>,
    },
    /// Print the IAM policy the stack's runs need, as JSON (for the roles CI
    /// plans and applies as).
    IamPolicy {
        dir: PathBuf,
        /// Only the read-only actions of `plan` and `drift` (for merge requests
        /// and scheduled drift jobs); without it, what `apply` and `destroy` call.
        #[arg(long)]
        plan: bool,
        /// The account ID the ARNs name (default `*`: any account).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Print the dependency graph as Graphviz DOT.
    Graph {
        dir: PathBuf,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Print the Kubernetes objects the stack's Kubernetes resources render, as YAML (secret data left out).
    Render {
        dir: PathBuf,
        /// Only this resource.
        address: Option<String>,
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// yaml (documents separated by `---`, as kubectl prints) or json (a v1 List).
        #[arg(long, short = 'o', value_name = "FORMAT", default_value = "yaml", value_parser = ["yaml", "json"])]
        output: String,
    },
    /// Rewrite stack files in the canonical layout (taplo's); with --check, change
    /// nothing and exit 1 listing the files that need it (for CI).
    Fmt {
        /// Files or directories (every .toml file under them); default stacks/ and modules/.
        paths: Vec<PathBuf>,
        #[arg(long)]
        check: bool,
    },
    /// Print a JSON Schema of the stack file format, for editors (taplo, Even Better TOML).
    Schema {
        /// Print the kinds' reference as Markdown instead (docs/kinds.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Print a shell completion script: `slipway completions bash > /etc/bash_completion.d/slipway`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff); with --out DIR, write one page per command there.
    Man {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the stack's outputs from the last apply.
    Output {
        /// The stack directory.
        dir: Option<PathBuf>,
        /// Print only this output (shown even when sensitive).
        name: Option<String>,
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Inspect or edit the state.
    #[command(subcommand)]
    State(StateCommand),
    /// Print an EKS bearer token as kubectl ExecCredential JSON (exec plugin).
    EksToken {
        /// The EKS cluster's name.
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        region: Option<String>,
        /// Assume this role first (e.g. the CI deployer's).
        #[arg(long)]
        role_arn: Option<String>,
    },
    /// Write a kubeconfig for the stack's EKS cluster that authenticates with `slipway eks-token`.
    Kubeconfig {
        dir: PathBuf,
        /// The eks_cluster address, when the stack has several.
        #[arg(long)]
        cluster: Option<String>,
        /// Write to FILE (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Remove a stale state lock by its ID (printed by the command that found it).
    ForceUnlock {
        lock_id: String,
        #[command(flatten)]
        at: StateLocator,
        /// Remove it even when its holder is still running (alive on this host, or its S3 lease renewed).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum ImportFrom {
    /// Import a cluster made by `eksctl create cluster`: its CloudFormation stacks, the EKS cluster
    /// and its managed nodegroups. Writes a stack directory and its state; changes nothing in the cloud
    /// but the ownership tags of what it imports.
    Eksctl {
        /// The cluster's name.
        #[arg(long)]
        cluster: Option<String>,
        /// Its region (default: AWS_REGION).
        #[arg(long)]
        region: Option<String>,
        /// An eksctl ClusterConfig file (eksctl.io/v1alpha5) giving the name, region and nodegroups.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The stack directory to write, e.g. stacks/NAME.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace the .toml files of an existing --out directory and an existing state.
        #[arg(long)]
        force: bool,
        /// Write the state here instead of state/<cluster>.json.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// List the addresses in the state.
    List {
        /// The stack directory.
        dir: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Show one resource's attributes.
    Show {
        address: String,
        #[command(flatten)]
        at: StateLocator,
    },
    /// Track a resource under a new address (a rename; the cloud object is
    /// not touched, its tags keep the old address). `[[moved]]` in the stack
    /// does the same through the plan and rewrites the ownership tags.
    Mv {
        from: String,
        to: String,
        #[command(flatten)]
        at: StateLocator,
        #[arg(long, value_name = "DURATION")]
        lock_timeout: Option<String>,
    },
    /// Forget resources (the cloud objects are left alone).
    Rm {
        #[arg(required = true)]
        addresses: Vec<String>,
        #[command(flatten)]
        at: StateLocator,
        #[arg(long, value_name = "DURATION")]
        lock_timeout: Option<String>,
    },
    /// List the earlier snapshots of an S3 state (bucket versioning keeps them).
    History {
        #[command(flatten)]
        at: StateLocator,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the state, or one earlier version of an S3 state (--version V), as JSON.
    Pull {
        #[command(flatten)]
        at: StateLocator,
        /// The S3 object version (see `state history`).
        #[arg(long, value_name = "V")]
        version: Option<String>,
    },
    /// Move the stack's state between the local file and the S3 location of its [stack.backend],
    /// keeping lineage and serial.
    Migrate {
        /// The stack directory.
        dir: PathBuf,
        /// Where to: s3 or local.
        #[arg(long, value_name = "s3|local")]
        to: String,
        /// The local file (default: the stack's state/<stack>.json).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        #[arg(long, value_name = "DURATION")]
        lock_timeout: Option<String>,
    },
}

/// The man page of slipway, or with `out` one page per command in that folder.
fn man(out: Option<&std::path::Path>) -> Result<u8, CmdError> {
    let cmd = Cli::command();
    let io = |e: std::io::Error| CmdError::Other(format!("writing the man page: {e}"));
    match out {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).map_err(io)?,
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io)?;
            clap_mangen::generate_to(cmd, dir).map_err(io)?;
        }
    }
    Ok(0)
}

async fn run(cli: Cli) -> Result<u8, CmdError> {
    let registry = Registry::builtin();
    match cli.command {
        Command::Validate { dir, vars } => commands::validate::run(&dir, &vars, &registry).await,
        Command::Graph { dir, vars } => commands::graph::run(&dir, &vars, &registry),
        Command::IamPolicy {
            dir,
            plan,
            account,
            vars,
        } => commands::iam_policy::run(&dir, &vars, plan, account.as_deref(), &registry).await,
        Command::Import {
            from:
                Some(ImportFrom::Eksctl {
                    cluster,
                    region,
                    config,
                    out,
                    force,
                    state,
                }),
            ..
        } => {
            commands::import::run_eksctl(
                &commands::import::EksctlArgs {
                    cluster,
                    region,
                    config,
                    out,
                    force,
                    state,
                },
                &registry,
            )
            .await
        }
        Command::Import {
            from: None,
            dir,
            address,
            id,
            vars,
            state,
            lock_timeout,
        } => {
            commands::import::run(
                &commands::import::ImportArgs {
                    dir: dir.unwrap_or_default(),
                    address: address.unwrap_or_default(),
                    id: id.unwrap_or_default(),
                    vars,
                    state,
                    lock_timeout,
                },
                &registry,
            )
            .await
        }
        Command::Drift {
            dir,
            vars,
            state,
            json,
            lock,
            lock_timeout,
        } => {
            commands::drift::run(
                &commands::drift::DriftArgs {
                    dir,
                    vars,
                    state,
                    json,
                    lock,
                    lock_timeout,
                },
                &registry,
            )
            .await
        }
        Command::Render {
            dir,
            address,
            vars,
            output,
        } => commands::render::run(&dir, address.as_deref(), &vars, output == "json", &registry),
        Command::Fmt { paths, check } => commands::fmt::run(&paths, check),
        Command::Schema { markdown } => commands::schema::run(&registry, markdown),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "slipway", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { out } => man(out.as_deref()),
        Command::Plan {
            stack,
            out,
            json,
            detailed_exitcode,
            destroy,
            stats,
            gitlab_report,
            replace,
            targets,
        } => {
            let outs = commands::plan::PlanOutputs {
                out,
                json,
                detailed_exitcode,
                stats,
                gitlab_report,
            };
            let mut args = stack.plan_args(destroy);
            args.replace = replace;
            args.targets = targets;
            commands::plan::run(&args, &outs, &registry).await
        }
        Command::Apply {
            target,
            vars,
            state,
            lock_timeout,
            auto_approve,
            parallelism,
            timeout,
            rollout_timeout,
            timings,
            replace,
            targets,
        } => {
            let opts = RunOpts {
                parallelism: parallelism as usize,
                timeout,
                rollout_timeout,
                timings,
            };
            if slipway::plan::file::is_plan_file(&target) {
                if state.is_some() {
                    return Err(CmdError::Other(
                        "a saved plan carries its state path; --state cannot change it".into(),
                    ));
                }
                commands::apply::run_saved(&target, &vars, lock_timeout.as_deref(), opts, &registry).await
            } else {
                let args = PlanArgs {
                    dir: target,
                    vars,
                    state,
                    lock_timeout,
                    destroy: false,
                    replace,
                    targets,
                    rollout_timeout,
                };
                commands::apply::run_dir(&args, auto_approve, opts, &registry).await
            }
        }
        Command::Destroy {
            stack,
            auto_approve,
            parallelism,
            timeout,
            targets,
        } => {
            let opts = RunOpts {
                parallelism: parallelism as usize,
                timeout,
                rollout_timeout: None,
                timings: None,
            };
            let mut args = stack.plan_args(true);
            args.targets = targets;
            commands::apply::run_dir(&args, auto_approve, opts, &registry).await
        }
        Command::Output { dir, name, state, json } => {
            commands::output::run(dir.as_deref(), state.as_deref(), name.as_deref(), json).await
        }
        Command::State(StateCommand::List { dir, state }) => {
            commands::state::list(dir.as_deref(), state.as_deref()).await
        }
        Command::State(StateCommand::Show { address, at }) => {
            commands::state::show(&address, at.stack.as_deref(), at.state.as_deref()).await
        }
        Command::State(StateCommand::Mv {
            from,
            to,
            at,
            lock_timeout,
        }) => {
            commands::state::mv(
                &from,
                &to,
                at.stack.as_deref(),
                at.state.as_deref(),
                lock_timeout.as_deref(),
            )
            .await
        }
        Command::State(StateCommand::Rm {
            addresses,
            at,
            lock_timeout,
        }) => {
            commands::state::rm(
                &addresses,
                at.stack.as_deref(),
                at.state.as_deref(),
                lock_timeout.as_deref(),
            )
            .await
        }
        Command::State(StateCommand::History { at, json }) => {
            commands::state::history(at.stack.as_deref(), at.state.as_deref(), json).await
        }
        Command::State(StateCommand::Pull { at, version }) => {
            commands::state::pull(at.stack.as_deref(), at.state.as_deref(), version.as_deref()).await
        }
        Command::State(StateCommand::Migrate {
            dir,
            to,
            state,
            lock_timeout,
        }) => commands::state::migrate(&dir, &to, state.as_deref(), lock_timeout.as_deref()).await,
        Command::EksToken {
            cluster,
            region,
            role_arn,
        } => commands::eks::eks_token(&cluster, region, role_arn).await,
        Command::Kubeconfig { dir, cluster, out } => {
            commands::eks::kubeconfig(&dir, cluster.as_deref(), out.as_deref()).await
        }
        Command::ForceUnlock { lock_id, at, force } => {
            commands::state::force_unlock(&lock_id, at.stack.as_deref(), at.state.as_deref(), force).await
        }
    }
}

/// The operator's settings from the flags and the environment.
fn operator_settings(cli: &Cli) -> Result<slipway::operator::Operator, String> {
    let mut flags = Vec::new();
    for kv in &cli.backend_config {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--backend-config {kv:?}: write KEY=VALUE, e.g. bucket=my-state"))?;
        if !slipway::operator::BACKEND_KEYS.contains(&k) {
            return Err(format!(
                "--backend-config: unknown key {k:?}; the keys are {}",
                slipway::operator::BACKEND_KEYS.join(", ")
            ));
        }
        flags.push((k.to_string(), v.to_string()));
    }
    let backend = slipway::operator::backend_from_env(&flags);
    if let Some(k) = backend
        .keys()
        .find(|k| !slipway::operator::BACKEND_KEYS.contains(&k.as_str()))
    {
        return Err(format!(
            "SLIPWAY_BACKEND_{}: unknown key; the keys are {}",
            k.to_ascii_uppercase(),
            slipway::operator::BACKEND_KEYS.join(", ")
        ));
    }
    let env_flag = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let locked_backend = cli.locked_backend
        || match env_flag("SLIPWAY_LOCKED_BACKEND").as_deref() {
            Some("0" | "false") => false,
            Some(_) => true,
            None => env_flag("CI").is_some_and(|v| v == "true"),
        };
    Ok(slipway::operator::Operator {
        kubeconfig: cli.kubeconfig.clone(),
        allow_env: cli.allow_env.clone(),
        backend,
        locked_backend,
    })
}

/// `--log-level`, else SLIPWAY_LOG: slipway's own records only (other
/// crates' debug output can hold request headers, and so tokens).
fn init_logs(flag: Option<&str>) {
    let level = flag
        .map(str::to_string)
        .or_else(|| std::env::var("SLIPWAY_LOG").ok())
        .filter(|l| !l.is_empty());
    let Some(level) = level else { return };
    let level = match level.to_ascii_lowercase().as_str() {
        l @ ("error" | "warn" | "info" | "debug" | "trace") => l.to_string(),
        other => {
            eprintln!("warning: SLIPWAY_LOG={other:?} is not error, warn, info, debug or trace; logging at info");
            "info".into()
        }
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("slipway={level}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}

fn main() -> ExitCode {
    // A usage error exits 1: 2 means "changes present" (plan
    // --detailed-exitcode) or "drifted", and CI must not read a typo as drift.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logs(cli.log_level.as_deref());
    if let Some(e) = cli.env.as_deref().filter(|e| !slipway::stack::load::is_name(e)) {
        eprintln!("error: --env {e:?}: an environment name is letters, digits, `_` and `-`");
        return ExitCode::from(1);
    }
    slipway::stack::load::select(slipway::stack::load::Selection {
        env: cli.env.clone(),
        var_files: cli.var_files.clone(),
    });
    match operator_settings(&cli) {
        Ok(o) => slipway::operator::set(o),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    // The AWS SDK and kube both link rustls with different crypto backends;
    // name one for the process, as rustls requires.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{}", slipway::sensitive::redact(&e.to_string()));
            ExitCode::from(1)
        }
    }
}
