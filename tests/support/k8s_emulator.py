"""A Kubernetes API emulator for slipway's tests (not a real API server).

It stores objects in memory and answers the REST calls slipway's kube client
makes: server-side apply (PATCH application/apply-patch+yaml, create or
merge, with managedFields, uid, resourceVersion, generation), GET, LIST with
label selectors, DELETE, merge patches (what `kubectl set image` does), the
status subresource (tests write Deployment and Pod status the way a
controller would), and enough discovery for `pinned_kind`.

What the apiserver normalizes, it normalizes too: resource quantities are
stored in canonical form (`0.5` -> `500m`, `1000m` -> `1`, `1.5Gi` ->
`1536Mi`, as apimachinery's resource.Quantity re-emits them), an env var's
empty `value` is left out (omitempty), and a Secret's `stringData` is merged
into `data` (base64) and never returned.

Objects go only into namespaces that exist (404 otherwise); default,
kube-system, kube-public and kube-node-lease exist from the start.
Deletion is as the apiserver does it: an object with `metadata.finalizers`
gets a deletionTimestamp and stays until they are removed; a namespace turns
Terminating (status.phase), refuses new content (403 Forbidden), and goes,
with everything in it, after --terminating-seconds (default 1).

The machine's kubectl works against it: discovery with short names
(`kubectl get deploy`), field selectors, watches (`kubectl rollout status`),
server-side dry runs (`kubectl diff`, nothing stored), and an apply that would
change a field another manager applied answers 409 Conflict unless forced
(then that manager loses the field).

The service proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`)
answers what a test set for that Service (POST /_emulator/proxy), else 200.

RBAC is enforced for bearer tokens of the form `as:USER[:GROUP,GROUP...]` (a
test's stand-in for what EKS maps an IAM role to): a request is allowed only
by a rule of a Role or ClusterRole bound to that user or a group (verb,
apiGroup, resource or resource/subresource, resourceNames), else 403
Forbidden with the apiserver's message; creating by server-side apply needs
`create` as well as `patch`. Any other token is an administrator.

What it does NOT do: real merge semantics of server-side apply (lists are
replaced, not merged by key), defaulting beyond a Deployment's replicas,
validation, admission, Service IP allocation, controllers.

Run: python3 k8s_emulator.py PORT
"""

import base64
import copy
import json
import re
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# group/version -> plural -> (kind, namespaced)
RESOURCES = {
    "v1": {
        "namespaces": ("Namespace", False),
        "configmaps": ("ConfigMap", True),
        "secrets": ("Secret", True),
        "serviceaccounts": ("ServiceAccount", True),
        "services": ("Service", True),
        "pods": ("Pod", True),
    },
    "apps/v1": {"deployments": ("Deployment", True), "replicasets": ("ReplicaSet", True)},
    "rbac.authorization.k8s.io/v1": {
        "roles": ("Role", True),
        "rolebindings": ("RoleBinding", True),
        "clusterroles": ("ClusterRole", False),
        "clusterrolebindings": ("ClusterRoleBinding", False),
    },
    "networking.k8s.io/v1": {"ingresses": ("Ingress", True)},
    "autoscaling/v2": {"horizontalpodautoscalers": ("HorizontalPodAutoscaler", True)},
    "policy/v1": {"poddisruptionbudgets": ("PodDisruptionBudget", True)},
}

# What `kubectl get deploy` and friends resolve through discovery.
SHORT_NAMES = {"namespaces": ["ns"], "configmaps": ["cm"], "serviceaccounts": ["sa"], "services": ["svc"],
               "pods": ["po"], "deployments": ["deploy"], "replicasets": ["rs"], "ingresses": ["ing"],
               "horizontalpodautoscalers": ["hpa"], "poddisruptionbudgets": ["pdb"]}

LOCK = threading.Lock()
STORE = {}  # (gv, plural, namespace, name) -> object
APPLIED = {}  # same key -> {manager: last applied object}
RV = [1000]
LOG = []  # (method, path) of every request, for tests that count calls
# --auto-rollout: act as a Deployment controller that succeeds at once (for
# the demo only; tests write status themselves).
AUTO_ROLLOUT = "--auto-rollout" in sys.argv
TERMINATING_SECONDS = float(sys.argv[sys.argv.index("--terminating-seconds") + 1]) if "--terminating-seconds" in sys.argv else 1.0
TERMINATING = {}  # namespace name -> time its deletion finishes
FAULTS = {}  # {"status": 500, "count": N, "match": "replicasets"} (POST /_emulator/faults)
PROXY = {}  # "ns/service" -> {"status": 500, "body": "..."}: what the service proxy answers


def roll_out(dep):
    n = dep.get("spec", {}).get("replicas", 1)
    dep["status"] = {"observedGeneration": dep["metadata"].get("generation", 1), "replicas": n,
                     "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                     "conditions": [{"type": "Available", "status": "True"},
                                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_rv():
    RV[0] += 1
    return str(RV[0])


def status(code, reason, message):
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code}


def merge(base, patch):
    """JSON merge patch (RFC 7386): maps merge, null deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def strategic(base, patch):
    """Strategic merge patch, simplified: like merge(), but lists of objects
    that all have a "name" merge item by item on that name (what
    `kubectl set image` relies on)."""
    if isinstance(patch, list) and isinstance(base, list) and all(isinstance(x, dict) and "name" in x for x in patch + base):
        out = copy.deepcopy(base)
        for item in patch:
            for i, cur in enumerate(out):
                if cur.get("name") == item["name"]:
                    out[i] = strategic(cur, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = strategic(out.get(k), v)
    return out


def leaves(obj, path=""):
    """(path, value) of every leaf of an applied config; lists count as leaves."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{path}.{k}")
    else:
        yield path, obj


def at_path(obj, path):
    for k in [p for p in path.split(".") if p]:
        if not isinstance(obj, dict) or k not in obj:
            return None
        obj = obj[k]
    return obj


def conflicts(cur, patch, others):
    """Fields `patch` sets to another value than the live one while another
    manager's apply owns them: (manager, path), as server-side apply reports."""
    out = []
    for path, value in leaves({k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}):
        if path.startswith(".metadata.name") or path.startswith(".metadata.namespace"):
            continue
        if at_path(cur, path) == value:
            continue
        for m, applied in others.items():
            if at_path(applied, path) is not None:
                out.append((m, path))
    return out


def drop_fields(applied, patch):
    """`applied` without the leaves `patch` sets (they changed owner)."""
    if not isinstance(applied, dict) or not isinstance(patch, dict):
        return applied
    out = {}
    for k, v in applied.items():
        if k in patch and not (isinstance(v, dict) and isinstance(patch[k], dict)):
            continue
        out[k] = drop_fields(v, patch[k]) if k in patch else v
    return out


def prune(obj, old, new, others=()):
    """Remove from obj the fields a manager applied before (old) but not now
    (new), unless another manager's apply also sets them (a co-owned field
    stays, as server-side apply keeps it)."""
    if not isinstance(old, dict) or not isinstance(obj, dict):
        return
    for k, v in old.items():
        theirs = [o[k] for o in others if isinstance(o, dict) and k in o]
        if not isinstance(new, dict) or k not in new:
            if not theirs:
                obj.pop(k, None)
            elif isinstance(v, dict):
                prune(obj.get(k), v, {}, theirs)
        elif isinstance(v, dict):
            prune(obj.get(k), v, new.get(k), theirs)


def invalid_deployment(obj, cur):
    """What a real apiserver refuses in a Deployment: a selector that does not
    match the pod template's labels, and any change of the selector (it is
    immutable in apps/v1)."""
    spec = obj.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in sel.items()):
        return "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
    if cur is not None and (cur.get("spec") or {}).get("selector") != spec.get("selector"):
        return "spec.selector: Invalid value: field is immutable"
    return None


_QTY = re.compile(r"^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_BINARY = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_DECIMAL = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def canonical_quantity(text):
    """A quantity as apimachinery's resource.Quantity re-emits it; the text
    itself when it is not one (validation is not emulated)."""
    m = _QTY.match(str(text).strip())
    if not m:
        return text
    sign, digits, suffix = m.group(1), m.group(2), m.group(3) or ""
    value = Fraction(digits)
    if suffix in _BINARY[1:]:
        value *= 1024 ** _BINARY.index(suffix)
    elif suffix[:1] in ("e", "E"):
        value *= Fraction(10) ** int(suffix[1:])
    elif suffix:
        value *= Fraction(10) ** next(e for e, s in _DECIMAL.items() if s == suffix)
    if sign == "-":
        value = -value
    if suffix in _BINARY[1:] and value.denominator == 1 and abs(value) >= 1024:
        n = max(i for i in range(7) if value % (1024 ** i) == 0)
        return f"{value // (1024 ** n)}{_BINARY[n]}"
    for e in sorted(_DECIMAL, reverse=True):
        scaled = value / Fraction(10) ** e
        if scaled.denominator == 1:
            return f"{scaled}{_DECIMAL[e]}"
    # Finer than a nano unit: rounded up, as the apiserver does.
    return f"{-(-value * 10 ** 9 // 1)}n"


def normalize(obj):
    """What the apiserver stores instead of what was sent (defaults included:
    a Deployment without `spec.replicas` gets 1)."""
    if obj.get("kind") == "Deployment" and isinstance(obj.get("spec"), dict):
        obj["spec"].setdefault("replicas", 1)
    def walk(node, parent=None):
        if isinstance(node, dict):
            for k, v in list(node.items()):
                if k in ("requests", "limits") and parent == "resources" and isinstance(v, dict):
                    node[k] = {q: canonical_quantity(x) for q, x in v.items()}
                elif k == "env" and isinstance(v, list):
                    for item in v:
                        if isinstance(item, dict) and item.get("value") == "":
                            del item["value"]
                    walk(v, k)
                else:
                    walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, parent)
    walk(obj)
    if obj.get("kind") == "Secret" and "stringData" in obj:
        data = obj.setdefault("data", {})
        for k, v in (obj.pop("stringData") or {}).items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    return obj


IMMUTABLE = {
    "RoleBinding": [("roleRef",)],
    "ClusterRoleBinding": [("roleRef",)],
    "Secret": [("type",)],
    "Service": [("spec", "clusterIP")],
}


def invalid(kind, obj, cur):
    """What a real apiserver refuses: a Deployment's selector that does not
    match its template or changes, and a change of any other immutable field
    (a binding's roleRef, a Secret's type, a Service's clusterIP once set)."""
    if kind == "Deployment":
        return invalid_deployment(obj, cur)
    for path in IMMUTABLE.get(kind, []):
        def at(o):
            for k in path:
                o = (o or {}).get(k) if isinstance(o, dict) else None
            return o
        if cur is not None and at(cur) is not None and at(obj) != at(cur):
            return f"{'.'.join(path)}: Invalid value: field is immutable"
    return None


def parse_path(path):
    """-> (gv, plural, namespace, name, subresource) or None."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        gv, rest = parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = parts[1] + "/" + parts[2], parts[3:]
    else:
        return None
    ns = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not rest:
        return (gv, None, ns, None, None)
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return (gv, plural, ns, name, sub)


def fields_match(obj, selector):
    """A field selector of `metadata.name=` / `metadata.namespace=` terms."""
    for term in [t for t in selector.split(",") if t]:
        k, _, v = term.replace("==", "=").partition("=")
        have = obj.get("metadata", {}).get(k.split(".", 1)[1]) if k.startswith("metadata.") else None
        if have != v:
            return False
    return True


def matches(obj, selector):
    labels = obj.get("metadata", {}).get("labels", {}) or {}
    for term in [t for t in selector.split(",") if t]:
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k) != v:
                return False
        elif labels.get(term) is None:
            return False
    return True


def discovery(path):
    if path == "/api":
        return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        groups = []
        for gv in RESOURCES:
            if "/" in gv:
                g, v = gv.split("/")
                groups.append({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                               "preferredVersion": {"groupVersion": gv, "version": v}})
        return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    if path == "/version":
        return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-slipway-emulator"}
    return None


def finish_deletions():
    """Namespaces whose time is up go, with their contents (under LOCK)."""
    t = time.time()
    for ns, until in list(TERMINATING.items()):
        if t < until:
            continue
        held = [k for k, o in STORE.items() if k[2] == ns and (o.get("metadata") or {}).get("finalizers")]
        if held:
            continue  # finalizers inside keep the namespace Terminating
        for k in [k for k in STORE if k[2] == ns]:
            STORE.pop(k, None)
            APPLIED.pop(k, None)
        STORE.pop(("v1", "namespaces", "", ns), None)
        APPLIED.pop(("v1", "namespaces", "", ns), None)
        del TERMINATING[ns]


def delete_object(key, kind, name):
    """DELETE as the apiserver does it: finalizers hold the object, a
    namespace terminates; anything else goes at once."""
    cur = STORE[key]
    md = cur.setdefault("metadata", {})
    if kind == "Namespace":
        md.setdefault("deletionTimestamp", now())
        cur.setdefault("status", {})["phase"] = "Terminating"
        TERMINATING.setdefault(name, time.time() + TERMINATING_SECONDS)
        for k, o in STORE.items():
            if k[2] == name:
                o.setdefault("metadata", {}).setdefault("deletionTimestamp", now())
        return 200, copy.deepcopy(cur)
    if md.get("finalizers"):
        md.setdefault("deletionTimestamp", now())
        md["resourceVersion"] = next_rv()
        return 200, copy.deepcopy(cur)
    del STORE[key]
    APPLIED.pop(key, None)
    return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name, "kind": kind}}


def identity(headers):
    """(user, groups) of an `as:USER:GROUPS` token; None for an administrator."""
    auth = headers.get("Authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
    if not token.startswith("as:"):
        return None
    parts = token.split(":")
    return parts[1], [g for g in (parts[2] if len(parts) > 2 else "").split(",") if g] + ["system:authenticated"]


def allowed(who, verb, group, resource, ns, name):
    """RBAC: a rule of a role bound to the user or one of its groups allows it."""
    user, groups = who
    bindings = [o for (g, pl, n, _), o in STORE.items()
                if g == "rbac.authorization.k8s.io/v1" and (pl == "clusterrolebindings" or (pl == "rolebindings" and n == ns))]
    for b in bindings:
        subjects = b.get("subjects") or []
        if not any((sub.get("kind") == "User" and sub.get("name") == user)
                   or (sub.get("kind") == "Group" and sub.get("name") in groups) for sub in subjects):
            continue
        ref = b.get("roleRef") or {}
        role_ns = "" if ref.get("kind") == "ClusterRole" else b["metadata"].get("namespace", "")
        plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        role = STORE.get(("rbac.authorization.k8s.io/v1", plural, role_ns, ref.get("name")))
        for rule in (role or {}).get("rules") or []:
            if (any(x in ("*", group) for x in rule.get("apiGroups", []))
                    and any(x in ("*", resource) for x in rule.get("resources", []))
                    and any(x in ("*", verb) for x in rule.get("verbs", []))
                    and (not rule.get("resourceNames") or name in rule["resourceNames"])):
                return True
    return False


def forbidden(who, verb, group, resource, ns, name):
    what = f'{resource.split("/")[0]}{"." + group if group else ""} "{name}"' if name else resource.split("/")[0] + (f".{group}" if group else "")
    where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
    return status(403, "Forbidden", f'{what} is forbidden: User "{who[0]}" cannot {verb} resource "{resource}" in API group "{group}"{where}')


def handle(method, raw_path, headers, body):
    url = urlparse(raw_path)
    q = parse_qs(url.query)
    d = discovery(url.path)
    if d and method == "GET":
        return d
    p = parse_path(url.path)
    if p is None or p[0] not in RESOURCES:
        return status(404, "NotFound", f"the server could not find the requested resource ({url.path})")
    gv, plural, ns, name, sub = p
    if plural is None:
        resources = [{"name": pl, "singularName": k.lower(), "namespaced": nsd, "kind": k,
                      "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                      **({"shortNames": SHORT_NAMES[pl]} if pl in SHORT_NAMES else {})}
                     for pl, (k, nsd) in RESOURCES[gv].items()]
        resources += [{"name": f"{pl}/status", "singularName": "", "namespaced": nsd, "kind": k, "verbs": ["get", "patch", "update"]}
                      for pl, (k, nsd) in RESOURCES[gv].items() if pl in ("deployments", "pods")]
        return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
    if plural not in RESOURCES[gv]:
        return status(404, "NotFound", f"no resource {plural} in {gv}")
    kind, namespaced = RESOURCES[gv][plural]
    group = gv.split("/")[0] if "/" in gv else ""
    if plural == "services" and sub == "proxy" and name:
        # The API server's service proxy: what the Service's pods answer,
        # as a test set it (POST /_emulator/proxy), else 200 "ok".
        who = identity(headers)
        with LOCK:
            if who is not None and not allowed(who, "get", "", "services/proxy", ns, name):
                return forbidden(who, "get", "", "services/proxy", ns, name)
            svc = name.split(":")[0]
            if ("v1", "services", ns, svc) not in STORE:
                return status(404, "NotFound", f'services "{svc}" not found')
            answer = PROXY.get(f"{ns}/{svc}", {"status": 200, "body": "ok"})
            LOG.append((method, url.path))
        return "text", (answer.get("status", 200), answer.get("body", ""))
    who = identity(headers)
    with LOCK:
        finish_deletions()
        LOG.append((method, url.path))
        if who is not None:
            resource = plural + (f"/{sub}" if sub else "")
            if name is None:
                verbs = ["watch" if q.get("watch", [""])[0] in ("1", "true") else "list"]
            else:
                verbs = {"GET": ["get"], "DELETE": ["delete"], "PUT": ["update"], "POST": ["create"]}.get(method, ["patch"])
                exists = (gv, plural, ns if namespaced else "", name) in STORE
                if method == "PATCH" and "apply-patch" in headers.get("Content-Type", "") and not exists:
                    verbs = ["patch", "create"]
            for verb in verbs:
                if not allowed(who, verb, group, resource, ns if namespaced else "", name):
                    return forbidden(who, verb, group, resource, ns if namespaced else "", name)
        if name is None:
            if method != "GET":
                return status(405, "MethodNotAllowed", "only GET on collections")
            sel = q.get("labelSelector", [""])[0]
            fsel = q.get("fieldSelector", [""])[0]
            items = [copy.deepcopy(o) for (g, pl, n, _), o in sorted(STORE.items())
                     if g == gv and pl == plural and (not ns or n == ns) and matches(o, sel) and fields_match(o, fsel)]
            if q.get("watch", [""])[0] in ("1", "true"):
                return "watch", (gv, plural, ns, sel, fsel, items, float(q.get("timeoutSeconds", ["30"])[0]))
            return 200, {"kind": kind + "List", "apiVersion": gv, "metadata": {"resourceVersion": str(RV[0])}, "items": items}
        key = (gv, plural, ns if namespaced else "", name)
        cur = STORE.get(key)
        if method == "GET":
            if cur is None:
                return status(404, "NotFound", f'{plural} "{name}" not found')
            return 200, copy.deepcopy(cur)
        if method == "DELETE":
            if cur is None:
                return status(404, "NotFound", f'{plural} "{name}" not found')
            return delete_object(key, kind, name)
        if method == "PATCH":
            ctype = headers.get("Content-Type", "")
            try:
                patch = json.loads(body or b"{}")
            except ValueError as e:
                return status(400, "BadRequest", f"the patch is not JSON: {e}")
            if sub == "status":
                if cur is None:
                    return status(404, "NotFound", f'{plural} "{name}" not found')
                cur["status"] = merge(cur.get("status", {}), patch.get("status", {}))
                cur["metadata"]["resourceVersion"] = next_rv()
                return 200, copy.deepcopy(cur)
            if cur is None and namespaced and ("v1", "namespaces", "", ns) not in STORE:
                return status(404, "NotFound", f'namespaces "{ns}" not found')
            if cur is None and namespaced and ns in TERMINATING:
                return status(403, "Forbidden", f'{plural} "{name}" is forbidden: unable to create new content in namespace {ns} because it is being terminated')
            dry_run = q.get("dryRun", [""])[0] == "All"
            if ctype.startswith("application/apply-patch"):
                manager = q.get("fieldManager", [""])[0]
                if not manager:
                    return status(422, "Invalid", "fieldManager is required for apply")
                force = q.get("force", [""])[0] in ("1", "true")
                if cur is not None and not force:
                    clash = conflicts(cur, patch, {m: a for m, a in APPLIED.get(key, {}).items() if m != manager})
                    if clash:
                        return status(409, "Conflict", f"Apply failed with {len(clash)} conflict{'s' if len(clash) > 1 else ''}: "
                                      + "; ".join(f'conflict with "{m}": {path}' for m, path in clash))
                if patch.get("kind") != kind or patch.get("apiVersion") != gv:
                    return status(400, "BadRequest", f"apply of {patch.get('apiVersion')}/{patch.get('kind')} to {gv}/{plural}")
                if patch.get("metadata", {}).get("name") != name:
                    return status(400, "BadRequest", "the name in the body does not match the URL")
                if cur is None:
                    obj = copy.deepcopy(patch)
                    md = obj.setdefault("metadata", {})
                    if namespaced:
                        md["namespace"] = ns
                    md.update({"uid": str(uuid.uuid4()), "creationTimestamp": now(), "generation": 1})
                else:
                    obj = copy.deepcopy(cur)
                    others = [a for m, a in APPLIED.get(key, {}).items() if m != manager]
                    prune(obj, APPLIED.get(key, {}).get(manager), patch, others)
                    obj = merge(obj, patch)
                    if obj.get("spec") != cur.get("spec"):
                        obj["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
                bad = invalid(kind, obj, cur)
                if bad:
                    return status(422, "Invalid", f'{kind} "{name}" is invalid: {bad}')
                normalize(obj)
                if cur is not None and obj.get("spec") == cur.get("spec"):
                    obj["metadata"]["generation"] = cur["metadata"].get("generation", 1)
                obj["metadata"]["resourceVersion"] = next_rv()
                obj["metadata"]["managedFields"] = [{"manager": manager, "operation": "Apply", "apiVersion": gv, "time": now()}]
                if AUTO_ROLLOUT and kind == "Deployment":
                    roll_out(obj)
                if dry_run:
                    # What would be stored, and nothing stored (kubectl diff).
                    return 200, copy.deepcopy(obj)
                if force:
                    # Forced: the other managers lose the fields this one now sets.
                    for m, a in APPLIED.get(key, {}).items():
                        if m != manager:
                            APPLIED[key][m] = drop_fields(a, patch)
                STORE[key] = obj
                APPLIED.setdefault(key, {})[manager] = copy.deepcopy(patch)
                return (201 if cur is None else 200), copy.deepcopy(obj)
            if ctype.startswith("application/merge-patch") or ctype.startswith("application/strategic-merge-patch"):
                if cur is None:
                    return status(404, "NotFound", f'{plural} "{name}" not found')
                obj = strategic(cur, patch) if "strategic" in ctype else merge(cur, patch)
                if dry_run:
                    normalize(obj)
                    return 200, copy.deepcopy(obj)
                bad = invalid(kind, obj, cur)
                if bad:
                    return status(422, "Invalid", f'{kind} "{name}" is invalid: {bad}')
                normalize(obj)
                if obj.get("spec") != cur.get("spec"):
                    obj["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
                    if AUTO_ROLLOUT and kind == "Deployment":
                        roll_out(obj)
                obj["metadata"]["resourceVersion"] = next_rv()
                STORE[key] = obj
                md = obj["metadata"]
                if md.get("deletionTimestamp") and not md.get("finalizers") and kind != "Namespace" and ns not in TERMINATING:
                    # Its last finalizer removed: the deletion completes.
                    del STORE[key]
                    APPLIED.pop(key, None)
                return 200, copy.deepcopy(obj)
            return status(415, "UnsupportedMediaType", f"unsupported patch type {ctype}")
        if method == "POST":
            return status(405, "MethodNotAllowed", "create by POST is not emulated; use server-side apply")
        return status(405, "MethodNotAllowed", method)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/_emulator/log":
            code, out = 200, {"calls": [[m, p] for m, p in LOG]}
        elif self.path == "/_emulator/faults" and self.command == "POST":
            # The next `count` GETs whose path contains `match` answer `status`
            # (an API server restarting or overloaded), for tests of retries.
            with LOCK:
                FAULTS.update(json.loads(body or b"{}"))
            code, out = 200, dict(FAULTS)
        elif self.path == "/_emulator/proxy" and self.command == "POST":
            with LOCK:
                PROXY.update(json.loads(body or b"{}"))
            code, out = 200, dict(PROXY)
        elif self._fault():
            code, out = status(FAULTS["status"], "InternalError", "injected by the emulator: the server is restarting")
        else:
            code, out = handle(self.command, self.path, self.headers, body)
        if code == "watch":
            return self._watch(*out)
        if code == "text":
            status_code, text = out
            data = text.encode()
            self.send_response(status_code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        data = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self):
        with LOCK:
            hit = self.command == "GET" and FAULTS.get("count", 0) > 0 and FAULTS.get("match", "") in self.path
            if hit:
                FAULTS["count"] -= 1
            return hit

    def _chunk(self, event):
        data = (json.dumps(event) + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, gv, plural, ns, sel, fsel, items, timeout):
        """A watch as the apiserver streams it: ADDED for what exists, then
        MODIFIED and DELETED as objects change, until timeoutSeconds."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        seen = {}
        try:
            for o in items:
                seen[o["metadata"]["name"], o["metadata"].get("namespace", "")] = o["metadata"].get("resourceVersion")
                self._chunk({"type": "ADDED", "object": o})
            until = time.time() + min(timeout, 300)
            while time.time() < until:
                time.sleep(0.1)
                with LOCK:
                    finish_deletions()
                    now_items = {(o["metadata"]["name"], o["metadata"].get("namespace", "")): copy.deepcopy(o)
                                 for (g, pl, n, _), o in STORE.items()
                                 if g == gv and pl == plural and (not ns or n == ns) and matches(o, sel) and fields_match(o, fsel)}
                for k, o in now_items.items():
                    rv = o["metadata"].get("resourceVersion")
                    if k not in seen:
                        self._chunk({"type": "ADDED", "object": o})
                    elif seen[k] != rv:
                        self._chunk({"type": "MODIFIED", "object": o})
                    seen[k] = rv
                for k in [k for k in seen if k not in now_items]:
                    del seen[k]
                    self._chunk({"type": "DELETED", "object": {"metadata": {"name": k[0], "namespace": k[1]}}})
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    # The namespaces every cluster starts with.
    for _ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        STORE[("v1", "namespaces", "", _ns)] = {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": _ns, "uid": str(uuid.uuid4()), "creationTimestamp": now(),
                                                             "resourceVersion": next_rv()},
                                                "status": {"phase": "Active"}}
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
