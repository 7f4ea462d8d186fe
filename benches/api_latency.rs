//! How much of an apply is waiting, and does everything off the slowest
//! chain run while that chain waits? Applies `stacks/blog` through the fault
//! proxy with 100 ms latency per AWS call and EKS clusters / nodegroups held
//! CREATING for 30 s / 15 s, then prints the apply's wall time next to the
//! critical path (the longest chain of dependent steps, each step as long as
//! it took), and the AWS calls a no-op plan makes.
//!
//! Run: `cargo bench --bench api_latency` (needs moto: pip install 'moto[server]==5.2.1').
//! Goal: wall time within 10% of the critical path.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;

use support::k8s::K8sEmulator;
use support::moto::Moto;
use support::proxy::FaultProxy;
use support::Sandbox;

fn main() {
    let moto = Moto::start();
    moto.blog_prerequisites();
    let emu = K8sEmulator::start();
    let mut sb = Sandbox::with_moto(&moto);
    let proxy = FaultProxy::start(
        &moto.endpoint,
        sb.root(),
        &[
            "--latency-ms",
            "100",
            "--eks-cluster-creating",
            "30",
            "--eks-nodegroup-creating",
            "15",
        ],
    );
    sb.env.retain(|(k, _)| k != "AWS_ENDPOINT_URL" && k != "AWS_REGION");
    sb.env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    sb.env.push(("AWS_REGION".into(), "us-west-2".into()));
    sb.write("kubeconfig.yaml", &emu.kubeconfig());
    sb.env.push((
        "SLIPWAY_KUBECONFIG_OVERRIDE".into(),
        sb.path("kubeconfig.yaml").display().to_string(),
    ));
    sb.env.push(("REGISTRY_PASSWORD".into(), "token".into()));
    let blog = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("stacks/blog")
    .display()
    .to_string();
    let controller = emu.controller();

    let a = sb.run(&["apply", &blog, "--auto-approve", "--timings", "timings.json"]);
    assert_eq!(a.code, 0, "{}\n{}", a.stdout, a.stderr);
    drop(controller);
    let t: serde_json::Value = serde_json::from_str(&sb.read("timings.json")).unwrap();
    let wall = t["wall_s"].as_f64().unwrap();
    let dur: HashMap<String, f64> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["address"].as_str().unwrap().to_string(),
                s["finished_s"].as_f64().unwrap() - s["started_s"].as_f64().unwrap(),
            )
        })
        .collect();

    // Edges from the DOT graph: "a" -> "b" means a depends on b.
    let dot = sb.run(&["graph", &blog]).stdout;
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for line in dot.lines().filter(|l| l.contains(" -> ")) {
        let parts: Vec<&str> = line
            .trim()
            .trim_end_matches(';')
            .split(" -> ")
            .map(|s| s.trim_matches('"'))
            .collect();
        deps.entry(parts[0].to_string()).or_default().push(parts[1].to_string());
    }
    // Longest chain, each node weighted by its own duration.
    fn finish(
        a: &str,
        deps: &HashMap<String, Vec<String>>,
        dur: &HashMap<String, f64>,
        memo: &mut HashMap<String, (f64, Vec<String>)>,
    ) -> (f64, Vec<String>) {
        if let Some(v) = memo.get(a) {
            return v.clone();
        }
        let mut best = (0.0, Vec::new());
        for d in deps.get(a).into_iter().flatten() {
            let f = finish(d, deps, dur, memo);
            if f.0 > best.0 {
                best = f;
            }
        }
        let mut chain = best.1;
        chain.push(a.to_string());
        let v = (best.0 + dur.get(a).copied().unwrap_or(0.0), chain);
        memo.insert(a.to_string(), v.clone());
        v
    }
    let mut memo = HashMap::new();
    let (critical, chain) = dur
        .keys()
        .map(|a| finish(a, &deps, &dur, &mut memo))
        .fold((0.0, vec![]), |b, x| if x.0 > b.0 { x } else { b });
    let sum: f64 = dur.values().sum();

    let p = sb.run(&["plan", &blog, "--detailed-exitcode", "--stats"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let state = sb.state("blog");
    let aws_resources = state["resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| {
            let k = r["kind"].as_str().unwrap_or("");
            !k.starts_with("k8s_") && !["app", "ci_deployer", "registry_secret", "data"].contains(&k)
        })
        .count();

    println!("api latency benchmark: stacks/blog through the fault proxy (100 ms per AWS call; EKS cluster CREATING 30 s, nodegroup 15 s)");
    println!("  steps: {}   sum of step durations: {:.1} s", dur.len(), sum);
    println!("  apply wall time:        {wall:.1} s");
    println!("  critical path:          {critical:.1} s  ({})", chain.join(" -> "));
    println!(
        "  wall / critical path:   {:.1} %  (goal: within 110 %)",
        wall / critical * 100.0
    );
    println!("  no-op plan AWS calls (per service and action):");
    for line in p
        .stderr
        .lines()
        .filter(|l| l.starts_with("  ") || l.starts_with("API calls"))
    {
        println!("    {}", line.trim());
    }
    println!("  a design with one read per AWS resource needs at least {aws_resources} calls (and more where a describe lacks tags or attributes)");
    println!("  calls the proxy saw in all: {}", proxy.calls().len());
}
