//! The Kubernetes kinds slipway knows: each kind's name and what it renders
//! (one object of a fixed kind, a whole manifest, or an `app`, a
//! `ci_deployer`, a `registry_secret` that render several), and the plural
//! and scope of every Kubernetes kind it applies.

/// apiVersion, kind -> plural, namespaced.
pub const KNOWN: &[(&str, &str, &str, bool)] = &[
    ("v1", "Namespace", "namespaces", false),
    ("v1", "ConfigMap", "configmaps", true),
    ("v1", "Secret", "secrets", true),
    ("v1", "ServiceAccount", "serviceaccounts", true),
    ("v1", "Service", "services", true),
    ("v1", "Pod", "pods", true),
    ("apps/v1", "Deployment", "deployments", true),
    // Read only: the rollout wait finds a Deployment's new ReplicaSet.
    ("apps/v1", "ReplicaSet", "replicasets", true),
    ("rbac.authorization.k8s.io/v1", "Role", "roles", true),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", true),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("networking.k8s.io/v1", "Ingress", "ingresses", true),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", true),
];

/// The plural and scope of a kind slipway knows.
pub fn plural_of(api_version: &str, kind: &str) -> Option<(&'static str, bool)> {
    KNOWN
        .iter()
        .find(|(a, k, _, _)| *a == api_version && *k == kind)
        .map(|(_, _, p, n)| (*p, *n))
}

/// What a Kubernetes kind renders and how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// One object of a fixed kind; `body` maps config fields to object fields.
    Object {
        api_version: &'static str,
        kind: &'static str,
        body: &'static [(&'static str, &'static str)],
    },
    /// Any object given in full (`manifest`).
    Manifest,
    App,
    CiDeployer,
    RegistrySecret,
}

/// One Kubernetes kind.
pub struct K8sKind {
    pub name: &'static str,
    pub shape: Shape,
}

/// Every Kubernetes kind.
pub fn all() -> Vec<K8sKind> {
    use Shape::Object;
    let o = |name, api_version, kind, body| K8sKind {
        name,
        shape: Object {
            api_version,
            kind,
            body,
        },
    };
    vec![
        o("k8s_namespace", "v1", "Namespace", &[]),
        o("k8s_config_map", "v1", "ConfigMap", &[("data", "data")]),
        o(
            "k8s_service_account",
            "v1",
            "ServiceAccount",
            &[("image_pull_secrets", "imagePullSecrets")],
        ),
        o(
            "k8s_role",
            "rbac.authorization.k8s.io/v1",
            "Role",
            &[("rules", "rules")],
        ),
        o(
            "k8s_cluster_role",
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            &[("rules", "rules")],
        ),
        o(
            "k8s_role_binding",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &[("role_ref", "roleRef"), ("subjects", "subjects")],
        ),
        o(
            "k8s_cluster_role_binding",
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            &[("role_ref", "roleRef"), ("subjects", "subjects")],
        ),
        o("k8s_deployment", "apps/v1", "Deployment", &[("spec", "spec")]),
        o("k8s_service", "v1", "Service", &[("spec", "spec")]),
        o("k8s_ingress", "networking.k8s.io/v1", "Ingress", &[("spec", "spec")]),
        o(
            "k8s_hpa",
            "autoscaling/v2",
            "HorizontalPodAutoscaler",
            &[("spec", "spec")],
        ),
        K8sKind {
            name: "k8s_manifest",
            shape: Shape::Manifest,
        },
        K8sKind {
            name: "app",
            shape: Shape::App,
        },
        K8sKind {
            name: "ci_deployer",
            shape: Shape::CiDeployer,
        },
        K8sKind {
            name: "registry_secret",
            shape: Shape::RegistrySecret,
        },
    ]
}

/// True for the kinds that talk to a Kubernetes cluster.
pub fn is_kubernetes(kind: &str) -> bool {
    kind == "k8s_check" || all().iter().any(|k| k.name == kind)
}
