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

Server-side apply tracks field ownership as the apiserver does: each
manager owns the fieldsV1 paths it applied (`metadata.managedFields` shows
them); lists and maps merge by the official schema that kubernetes-validate
ships (list-map items by their keys, sets by value, atomic lists and maps
whole); an apply removes what its manager applied before and no longer
does, unless another manager owns it; updates (merge, strategic merge and
JSON patches, status writes) make their manager (fieldManager, else the
User-Agent's name) own what they changed and take it from the others.

What it does NOT do: defaulting beyond a Deployment's replicas, validation,
admission, Service IP allocation, controllers (tests write status as a
controller would; --auto-rollout marks Deployments rolled out at once).

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
MANAGED = {}  # same key -> {(manager, operation, subresource): set of fieldsV1 paths}
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


# --- The official schema, as kubernetes-validate ships it -------------------
# Lists and maps merge as the schema says (x-kubernetes-list-type map / set /
# atomic, x-kubernetes-list-map-keys, x-kubernetes-map-type atomic), for
# server-side apply and for strategic merge patches alike.

def load_definitions():
    try:
        import os
        import kubernetes_validate
        base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema", "v1.31.0-local")
        with open(os.path.join(base, "_definitions.json")) as f:
            doc = json.load(f)
        return doc.get("$defs") or doc.get("definitions") or {}
    except Exception as e:  # noqa: BLE001 (any failure: fall back, and say so)
        print(f"k8s_emulator: no official schemas ({e}); every list is replaced whole", file=sys.stderr)
        return {}


DEFS = load_definitions()
ROOTS = {}  # (group/version, kind) -> the kind's schema
for _def in DEFS.values():
    for _gvk in _def.get("x-kubernetes-group-version-kind", []):
        ROOTS[(f'{_gvk["group"]}/{_gvk["version"]}' if _gvk["group"] else _gvk["version"], _gvk["kind"])] = _def


def resolve(schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = DEFS.get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema if isinstance(schema, dict) else {}


def child(schema, key):
    """The schema of field `key` of a map (as written, refs unresolved: the
    list and map types sit beside the $ref)."""
    s = resolve(schema)
    props = s.get("properties") or {}
    if key in props:
        return props[key]
    extra = s.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
              "object": (dict,), "array": (list,)}


def wrong_type(value, schema, path="", depth=0):
    """Where a value has a JSON type its field's schema does not allow, as
    the apiserver's decoding refuses it (400: `cannot unmarshal bool into
    Go struct field ConfigMap.data of type string`) before anything else.
    Fields whose schema names no single type (int-or-string, quantities)
    and nulls are let through, as the apiserver lets them."""
    if value is None or depth > 40:
        return None
    s = resolve(schema)
    raw = s.get("type")
    types = [x for x in (raw if isinstance(raw, list) else [raw]) if x in JSON_TYPES]
    t = types[0] if len(types) == 1 else None
    if types and not s.get("x-kubernetes-int-or-string") and s.get("format") != "int-or-string":
        ok = any(isinstance(value, JSON_TYPES[x]) and not (x in ("integer", "number") and isinstance(value, bool))
                 for x in types)
        if not ok:
            found = {bool: "bool", str: "string", dict: "object", list: "array", int: "number", float: "number"}.get(type(value), "value")
            return f"json: cannot unmarshal {found} into Go value of type {'/'.join(types)} at {path or '.'}"
    if isinstance(value, dict) and (t in (None, "object")):
        for k, v in value.items():
            bad = wrong_type(v, child(schema, k), f"{path}.{k}", depth + 1)
            if bad:
                return bad
    if isinstance(value, list) and (t in (None, "array")):
        items = s.get("items") if isinstance(s.get("items"), dict) else {}
        for i, v in enumerate(value):
            bad = wrong_type(v, items, f"{path}[{i}]", depth + 1)
            if bad:
                return bad
    return None


def map_atomic(schema):
    return schema.get("x-kubernetes-map-type") == "atomic" or resolve(schema).get("x-kubernetes-map-type") == "atomic"


def list_keys(schema):
    """The list-map keys of a list, [] for a set, None for an atomic list."""
    t = schema.get("x-kubernetes-list-type")
    if t == "map":
        return schema.get("x-kubernetes-list-map-keys") or []
    if t == "set":
        return []
    return None


def key_value(item, name):
    v = item.get(name) if isinstance(item, dict) else None
    return "TCP" if v is None and name == "protocol" else v


def item_segment(item, keys):
    if not keys:
        return "v:" + json.dumps(item, separators=(",", ":"))
    return "k:" + json.dumps({k: key_value(item, k) for k in keys if key_value(item, k) is not None},
                             sort_keys=True, separators=(",", ":"))


def field_paths(value, schema, prefix=()):
    """The fields a value sets, as server-side apply tracks them: tuples of
    fieldsV1 segments (`f:name`, `k:{"name":"app"}`, `v:"get"`, and `.` for
    a list item itself)."""
    if isinstance(value, dict) and value and not map_atomic(schema):
        out = set()
        for k, v in value.items():
            if v is not None:
                out |= field_paths(v, child(schema, k), prefix + ("f:" + k,))
        return out
    keys = list_keys(schema) if isinstance(value, list) else None
    if value and keys is not None:
        out = set()
        for item in value:
            seg = prefix + (item_segment(item, keys),)
            if keys:
                out.add(seg + (".",))
                out |= field_paths(item, schema.get("items") or {}, seg)
            else:
                out.add(seg)
        return out
    return {prefix}


SYSTEM_METADATA = ("f:uid", "f:resourceVersion", "f:generation", "f:creationTimestamp", "f:managedFields",
                   "f:deletionTimestamp", "f:name", "f:namespace")


def object_paths(obj, gv, kind, status=False):
    """The fields of a whole object a manager can own (not its identity or
    what the server keeps for itself); with status=True only its status."""
    paths = field_paths(obj, ROOTS.get((gv, kind), {}))
    def keep(p):
        if p[:1] in (("f:apiVersion",), ("f:kind",)) or (p[:1] == ("f:metadata",) and p[1:2] and p[1] in SYSTEM_METADATA):
            return False
        return (p[:1] == ("f:status",)) == status
    return {p for p in paths if p and keep(p)}


def locate(obj, path):
    """(container, slot, value) of the node at a fieldsV1 path, or None."""
    node, parent, slot = obj, None, None
    for seg in path:
        if seg == ".":
            break
        if seg.startswith("f:"):
            if not isinstance(node, dict) or seg[2:] not in node:
                return None
            parent, slot, node = node, seg[2:], node[seg[2:]]
            continue
        if not isinstance(node, list):
            return None
        want = json.loads(seg[2:])
        if seg.startswith("k:"):
            idx = next((i for i, it in enumerate(node) if isinstance(it, dict)
                        and all(key_value(it, k) == v for k, v in want.items())), None)
        else:
            idx = next((i for i, it in enumerate(node) if it == want), None)
        if idx is None:
            return None
        parent, slot, node = node, idx, node[idx]
    return parent, slot, node


def remove_path(obj, path):
    found = locate(obj, path[:-1] if path[-1:] == (".",) else path)
    if found and found[0] is not None:
        del found[0][found[1]]


def tree(paths):
    """Paths as the fieldsV1 tree the apiserver returns in managedFields."""
    out = {}
    for p in sorted(paths):
        node = out
        for seg in p:
            node = node.setdefault(seg, {})
    return out


def show_path(path):
    out = ""
    for seg in path:
        if seg.startswith("f:"):
            out += "." + seg[2:]
        elif seg.startswith("k:"):
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(seg[2:]).items()) + "]"
        elif seg.startswith("v:"):
            out += "[=" + seg[2:] + "]"
    return out


def apply_merge(base, patch, schema):
    """An applied config merged into the live object by the schema: maps
    field by field, list-map items by their keys, sets by value; atomic
    lists and maps are replaced."""
    if isinstance(patch, dict) and isinstance(base, dict) and not map_atomic(schema):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            if v is not None:
                out[k] = apply_merge(base.get(k), v, child(schema, k))
        return out
    keys = list_keys(schema) if isinstance(patch, list) and isinstance(base, list) else None
    if keys is not None:
        out = copy.deepcopy(base)
        for item in patch:
            seg = item_segment(item, keys)
            idx = next((i for i, cur in enumerate(out) if item_segment(cur, keys) == seg), None)
            if idx is None:
                out.append(copy.deepcopy(item))
            elif keys:
                out[idx] = apply_merge(out[idx], item, schema.get("items") or {})
        return out
    return copy.deepcopy(patch)


def owned_below(paths, prefix):
    n = len(prefix)
    return any(p[:n] == prefix for p in paths)


def server_side_apply(key, gv, kind, cur, patch, manager, force):
    """Server-side apply of `patch` by `manager` onto `cur` (None: create).
    -> (object, managers after) or a 409 conflict status."""
    schema = ROOTS.get((gv, kind), {})
    managers = {m: set(p) for m, p in MANAGED.get(key, {}).items()}
    mine = (manager, "Apply", "")
    new = object_paths(patch, gv, kind)
    if cur is not None:
        clash = []
        for p in sorted(new):
            if p[-1:] == (".",):
                continue
            theirs = locate(cur, p)
            ours = locate(patch, p)
            if theirs is None or ours is None or theirs[2] == ours[2]:
                continue
            clash += [(m[0], p) for m, paths in managers.items() if m != mine and p in paths]
        if clash and not force:
            return status(409, "Conflict", f"Apply failed with {len(clash)} conflict{'s' if len(clash) > 1 else ''}: "
                          + "; ".join(f'conflict with "{m}" using {gv}: {show_path(p)}' for m, p in clash))
        if force:
            for m in managers:
                if m != mine:
                    managers[m] -= new
    obj = apply_merge(cur, patch, schema) if cur is not None else copy.deepcopy(patch)
    others = set().union(*[p for m, p in managers.items() if m != mine]) if managers else set()
    # Outermost first: a removed list item takes its fields with it.
    for p in sorted(managers.get(mine, set()) - new, key=lambda p: len(p) - (p[-1:] == (".",))):
        target = p[:-1] if p[-1:] == (".",) else p
        if p in others or owned_below(others | new, target):
            continue
        remove_path(obj, p)
    managers[mine] = new
    return obj, {m: p for m, p in managers.items() if p}


def record_update(key, gv, kind, cur, obj, manager, subresource=""):
    """An update (merge, strategic or JSON patch, PUT, a status write) makes
    its manager own what it changed, and takes that from the others."""
    status_only = subresource == "status"
    before = object_paths(cur, gv, kind, status_only) if cur else set()
    after = object_paths(obj, gv, kind, status_only)
    changed = {p for p in after if p not in before or (locate(cur, p) or (0, 0, None))[2] != (locate(obj, p) or (0, 0, None))[2]}
    gone = before - after
    managers = {m: set(p) for m, p in MANAGED.get(key, {}).items()}
    for m in managers:
        managers[m] = {p for p in managers[m] if p not in changed and not any(p[:len(g)] == g for g in gone)}
    mine = (manager, "Update", subresource)
    managers[mine] = managers.get(mine, set()) | changed
    MANAGED[key] = {m: p for m, p in managers.items() if p}


def stamp(key, obj, gv):
    """metadata.managedFields as the apiserver shows them."""
    entries = []
    for (m, op, sub), paths in MANAGED.get(key, {}).items():
        e = {"manager": m, "operation": op, "apiVersion": gv, "time": now(), "fieldsType": "FieldsV1", "fieldsV1": tree(paths)}
        if sub:
            e["subresource"] = sub
        entries.append(e)
    obj.setdefault("metadata", {})["managedFields"] = entries
    return obj


def strategic(base, patch, schema):
    """Strategic merge patch as kubectl sends it: maps merge, null deletes,
    lists whose schema says `x-kubernetes-patch-strategy: merge` merge item
    by item on their patch-merge-key (`$patch: delete` removes one), other
    lists are replaced; `$setElementOrder`/`$retainKeys` directives are
    accepted and not acted on."""
    if isinstance(patch, list):
        mkey = schema.get("x-kubernetes-patch-merge-key")
        if "merge" in (schema.get("x-kubernetes-patch-strategy") or "") and isinstance(base, list):
            out = copy.deepcopy(base)
            for item in patch:
                if mkey and isinstance(item, dict):
                    idx = next((i for i, cur in enumerate(out) if isinstance(cur, dict) and cur.get(mkey) == item.get(mkey)), None)
                    if item.get("$patch") == "delete":
                        if idx is not None:
                            del out[idx]
                    elif idx is None:
                        out.append(strategic(None, item, schema.get("items") or {}))
                    else:
                        out[idx] = strategic(out[idx], item, schema.get("items") or {})
                elif item not in out:
                    out.append(copy.deepcopy(item))
            return out
        return [strategic(None, x, schema.get("items") or {}) if isinstance(x, dict) else copy.deepcopy(x) for x in patch]
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        else:
            out[k] = strategic(out.get(k), v, child(schema, k))
    return out


def json_patch(obj, ops):
    """RFC 6902 add / remove / replace / test; None when a test fails or a
    path is missing (the apiserver answers 422)."""
    out = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op.get("path", "").split("/")[1:]]
        node = out
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node.get(p)
            if node is None:
                return None
        last = parts[-1] if parts else None
        slot = (int(last) if last != "-" else len(node)) if isinstance(node, list) else last
        have = (node[slot] if isinstance(node, list) and isinstance(slot, int) and slot < len(node)
                else node.get(slot) if isinstance(node, dict) else None)
        kind = op.get("op")
        if kind == "test":
            if have != op.get("value"):
                return None
        elif kind == "remove":
            if have is None:
                return None
            del node[slot]
        elif kind == "add" and isinstance(node, list):
            node.insert(slot, op.get("value"))
        elif kind in ("add", "replace"):
            node[slot] = op.get("value")
        else:
            return None
    return out


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


def quantity_value(text):
    """A quantity's value as a Fraction, or None when it is not one."""
    m = _QTY.match(str(text).strip())
    if not m:
        return None
    sign, digits, suffix = m.group(1), m.group(2), m.group(3) or ""
    value = Fraction(digits)
    if suffix in _BINARY[1:]:
        value *= 1024 ** _BINARY.index(suffix)
    elif suffix[:1] in ("e", "E"):
        value *= Fraction(10) ** int(suffix[1:])
    elif suffix:
        value *= Fraction(10) ** next(e for e, s in _DECIMAL.items() if s == suffix)
    return -value if sign == "-" else value


def invalid_pod_template(kind, obj):
    """The apiserver's checks of a pod template's containers: quantities that
    parse, each request at most its limit."""
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or (spec if kind == "Pod" else {})
    for i, c in enumerate((pod.get("initContainers") or []) + (pod.get("containers") or [])):
        res = c.get("resources") or {}
        for which in ("requests", "limits"):
            for r, q in (res.get(which) or {}).items():
                if quantity_value(q) is None:
                    return f"spec.template.spec.containers[{i}].resources.{which}[{r}]: Invalid value: {q!r}: quantities must match the regular expression"
        for r, q in (res.get("requests") or {}).items():
            lim = (res.get("limits") or {}).get(r)
            if lim is not None and quantity_value(q) > quantity_value(lim):
                return f"spec.template.spec.containers[{i}].resources.requests: Invalid value: {q!r}: must be less than or equal to {r} limit of {lim}"
    return None


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


_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def invalid_labels(where, labels):
    """The apiserver's label rules: a key is an optional DNS-subdomain prefix
    and `/`, then a name of at most 63 characters; a value is at most 63
    characters of letters, digits, `-`, `_` and `.`, alphanumeric at both ends."""
    for k, v in (labels or {}).items():
        prefix, _, name = k.rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or not name \
                or len(name) > 63 or not _LABEL_NAME.match(name):
            return f"{where}: Invalid value: {k!r}: name part must consist of alphanumeric characters, '-', '_' or '.'"
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_NAME.match(v):
            return (f"{where}: Invalid value: {v!r}: a valid label must be an empty string or consist of "
                    "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                    "character (must be no more than 63 characters)")
    return None


def invalid(kind, obj, cur):
    """What a real apiserver refuses: labels a label cannot be, a
    Deployment's selector that does not match its template or changes, and a
    change of any other immutable field (a binding's roleRef, a Secret's
    type, a Service's clusterIP once set)."""
    name = (obj.get("metadata") or {}).get("name") or ""
    label = kind in ("Namespace", "Service")
    if (label and not _DNS_LABEL.match(name)) or (not label and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name))):
        what = "RFC 1123 label" if label else "RFC 1123 subdomain"
        return f"metadata.name: Invalid value: {name!r}: a lowercase {what} must consist of lower case alphanumeric characters, '-' or '.'"
    bad = invalid_labels("metadata.labels", (obj.get("metadata") or {}).get("labels"))
    tmpl = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    bad = bad or invalid_labels("spec.template.metadata.labels", tmpl.get("labels"))
    if bad:
        return bad
    bad = invalid_pod_template(kind, obj)
    if bad:
        return bad
    if kind == "Service":
        for i, p in enumerate((obj.get("spec") or {}).get("ports") or []):
            n = p.get("nodePort")
            if n is not None and not 30000 <= int(n) <= 32767:
                return f"spec.ports[{i}].nodePort: Invalid value: {n}: provided port is not in the valid range. The range of valid ports is 30000-32767"
    if kind == "HorizontalPodAutoscaler":
        spec = obj.get("spec") or {}
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if lo < 1:
            return f"spec.minReplicas: Invalid value: {lo}: must be greater than or equal to 1"
        if hi is not None and hi < lo:
            return f"spec.maxReplicas: Invalid value: {hi}: must be greater than or equal to `minReplicas`"
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
            MANAGED.pop(k, None)
        STORE.pop(("v1", "namespaces", "", ns), None)
        MANAGED.pop(("v1", "namespaces", "", ns), None)
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
    MANAGED.pop(key, None)
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
        resources += [{"name": f"{pl}/scale", "singularName": "", "namespaced": True, "kind": "Scale", "group": "autoscaling",
                       "version": "v1", "verbs": ["get", "patch", "update"]}
                      for pl in RESOURCES[gv] if pl == "deployments"]
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
            # Who writes: the fieldManager, else the client's name (User-Agent), as the apiserver does it.
            manager = q.get("fieldManager", [""])[0] or headers.get("User-Agent", "unknown").split("/")[0].split(" ")[0]
            if sub == "status":
                if cur is None:
                    return status(404, "NotFound", f'{plural} "{name}" not found')
                before = copy.deepcopy(cur)
                cur["status"] = merge(cur.get("status", {}), patch.get("status", {}))
                record_update(key, gv, kind, before, cur, manager, "status")
                cur["metadata"]["resourceVersion"] = next_rv()
                return 200, copy.deepcopy(stamp(key, cur, gv))
            if sub == "scale" and kind == "Deployment":
                # The scale subresource, as the HPA and `kubectl scale` write it.
                if cur is None:
                    return status(404, "NotFound", f'{plural} "{name}" not found')
                before = copy.deepcopy(cur)
                replicas = (patch.get("spec") or {}).get("replicas")
                if isinstance(replicas, int) and replicas != cur["spec"].get("replicas"):
                    cur["spec"]["replicas"] = replicas
                    cur["metadata"]["generation"] = cur["metadata"].get("generation", 1) + 1
                    record_update(key, gv, kind, before, cur, manager, "scale")
                    cur["metadata"]["resourceVersion"] = next_rv()
                    stamp(key, cur, gv)
                return 200, {"kind": "Scale", "apiVersion": "autoscaling/v1",
                             "metadata": {"name": name, "namespace": ns, "resourceVersion": cur["metadata"]["resourceVersion"]},
                             "spec": {"replicas": cur["spec"].get("replicas", 1)}, "status": {"replicas": cur["spec"].get("replicas", 1)}}
            if cur is None and namespaced and ("v1", "namespaces", "", ns) not in STORE:
                return status(404, "NotFound", f'namespaces "{ns}" not found')
            if cur is None and namespaced and ns in TERMINATING:
                return status(403, "Forbidden", f'{plural} "{name}" is forbidden: unable to create new content in namespace {ns} because it is being terminated')
            dry_run = q.get("dryRun", [""])[0] == "All"
            if ctype.startswith("application/apply-patch"):
                if not q.get("fieldManager", [""])[0]:
                    return status(422, "Invalid", "fieldManager is required for apply")
                force = q.get("force", [""])[0] in ("1", "true")
                if patch.get("kind") != kind or patch.get("apiVersion") != gv:
                    return status(400, "BadRequest", f"apply of {patch.get('apiVersion')}/{patch.get('kind')} to {gv}/{plural}")
                if patch.get("metadata", {}).get("name") != name:
                    return status(400, "BadRequest", "the name in the body does not match the URL")
                bad = wrong_type(patch, ROOTS.get((gv, kind), {}))
                if bad:
                    return status(400, "BadRequest", f"error decoding the body: {bad}")
                merged = server_side_apply(key, gv, kind, cur, patch, manager, force)
                if isinstance(merged[0], int):
                    return merged
                obj, managers = merged
                md = obj.setdefault("metadata", {})
                if cur is None:
                    if namespaced:
                        md["namespace"] = ns
                    md.update({"uid": str(uuid.uuid4()), "creationTimestamp": now(), "generation": 1})
                bad = invalid(kind, obj, cur)
                if bad:
                    return status(422, "Invalid", f'{kind} "{name}" is invalid: {bad}')
                normalize(obj)
                if cur is not None:
                    gen = cur["metadata"].get("generation", 1)
                    md["generation"] = gen + 1 if obj.get("spec") != cur.get("spec") else gen
                md["resourceVersion"] = next_rv()
                if AUTO_ROLLOUT and kind == "Deployment":
                    roll_out(obj)
                if dry_run:
                    # What would be stored, and nothing stored (kubectl diff).
                    saved = MANAGED.get(key)
                    MANAGED[key] = managers
                    stamp(key, obj, gv)
                    if saved is None:
                        MANAGED.pop(key, None)
                    else:
                        MANAGED[key] = saved
                    return 200, copy.deepcopy(obj)
                MANAGED[key] = managers
                STORE[key] = stamp(key, obj, gv)
                return (201 if cur is None else 200), copy.deepcopy(obj)
            if ctype.startswith(("application/merge-patch", "application/strategic-merge-patch", "application/json-patch")):
                if cur is None:
                    return status(404, "NotFound", f'{plural} "{name}" not found')
                if "json-patch" in ctype:
                    obj = json_patch(cur, patch if isinstance(patch, list) else [])
                    if obj is None:
                        return status(422, "Invalid", "the JSON patch does not apply: a test failed or a path is missing")
                elif "strategic" in ctype:
                    obj = strategic(cur, patch, ROOTS.get((gv, kind), {}))
                else:
                    obj = merge(cur, patch)
                bad = wrong_type(obj, ROOTS.get((gv, kind), {}))
                if bad:
                    return status(400, "BadRequest", f"error decoding the patched object: {bad}")
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
                record_update(key, gv, kind, cur, obj, manager)
                STORE[key] = stamp(key, obj, gv)
                md = obj["metadata"]
                if md.get("deletionTimestamp") and not md.get("finalizers") and kind != "Namespace" and ns not in TERMINATING:
                    # Its last finalizer removed: the deletion completes.
                    del STORE[key]
                    MANAGED.pop(key, None)
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
