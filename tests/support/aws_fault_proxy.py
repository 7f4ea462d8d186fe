"""A reverse proxy between slipway and moto that behaves like a busy AWS.

Loopback only. For every call it can: add a fixed latency; answer a
protocol-correct throttling error or a 5xx, with given probabilities, before
forwarding; forward a create and then lose its response (the cloud acted,
the client never heard); and report EKS clusters and nodegroups as CREATING
for N seconds after their create; or answer 500 to every call of one action
after its first N (a service that went down mid-run). Strict rules, each switchable,
answer what AWS answers where moto accepts: --iam-propagation S (EKS CreateCluster
cannot assume a role for S seconds after its CreateRole), --ec2-read-lag S (Describe*
does not find a VPC, subnet, security group or route table for S seconds after its
create), --igw-required (an internet-facing CreateLoadBalancer in a VPC without an
attached internet gateway is refused, InvalidSubnet); --linger S (for S seconds after a cluster or load
balancer is deleted, deleting a subnet, security group or VPC, or detaching the
internet gateway, answers DependencyViolation: the network interfaces linger);
--deny ACTION (repeatable) answers AccessDenied, as a
least-privilege role gets; --eks-nodegroup-failed N reports the first N nodegroups as CREATE_FAILED (AsgInstanceLaunchFailures), as EKS does when
the nodes never join; --eks-update-busy S (for S seconds after an EKS update
starts, DescribeUpdate says InProgress and another update of the same cluster or
nodegroup answers ResourceInUseException); --in-use-delete (DeleteTargetGroup
of a group a listener forwards to answers ResourceInUse; DeleteSecurityGroup of
a group that an instance, a load balancer or an EKS cluster carries, or that
another group's rule names, answers DependencyViolation); --nat-needs-igw (a
public NAT gateway made in a VPC with no attached internet gateway turns
failed, Gateway.NotAttached, as DescribeNatGateways then reports);
--cert-must-be-issued (an HTTPS listener with a certificate ACM has not issued
answers UnsupportedCertificate); --name-limits (AWS's name and tag limits, which
moto does not check: ALB and target group names 1-32 of letters, digits and
hyphens, IAM role names 1-64, at most 50 tags, keys up to 128 and values up to
256 characters, no `aws:` keys: ValidationError, TagLimitExceeded, ...). Every call is logged as a JSON line
(service, action, status, fault, the JSON request of EKS calls, the status
an ACM DescribeCertificate answered, the port of an ELB CreateListener) so tests
can count calls and check what moto ignores.

Run: python3 aws_fault_proxy.py --port P --upstream http://127.0.0.1:M [--latency-ms N]
     [--throttle P] [--error5xx P] [--lose P] [--eks-cluster-creating S]
     [--fail-action A --fail-after N]
     [--eks-nodegroup-creating S] [--seed N] [--log FILE]
"""

import argparse
import http.client
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ARGS = None
RNG = random.Random()
LOCK = threading.Lock()
SEEN = {}  # action -> calls seen (for --fail-action)
CREATED = {}  # ("cluster", name) or ("nodegroup", cluster, name) -> time created
ROLES = {}  # IAM role name -> time created (--iam-propagation)
LINGER = {"until": 0.0}  # network interfaces of a deleted cluster/ALB linger until then (--linger)
FAILED_NODEGROUPS = set()  # nodegroup ARNs reported CREATE_FAILED (--eks-nodegroup-failed)
FRESH = {}  # EC2 ID -> time created (--ec2-read-lag)
BUSY = {}  # ("cluster", name) or ("nodegroup", cluster, name) -> update running until (--eks-update-busy)
UPDATES = {}  # EKS update ID -> running until (--eks-update-busy)
FAILED_NATS = {}  # NAT gateway ID -> VPC it has no internet gateway in (--nat-needs-igw)

# --ec2-read-lag: what each EC2 create answers with, and the NotFound code
# EC2 gives for that kind of ID while its Describe does not see it yet.
EC2_NEW = {
    "CreateVpc": (r"<vpcId>(vpc-[0-9a-f]+)</vpcId>", "InvalidVpcID.NotFound", "vpc"),
    "CreateSubnet": (r"<subnetId>(subnet-[0-9a-f]+)</subnetId>", "InvalidSubnetID.NotFound", "subnet"),
    "CreateSecurityGroup": (r"<groupId>(sg-[0-9a-f]+)</groupId>", "InvalidGroup.NotFound", "security group"),
    "CreateRouteTable": (r"<routeTableId>(rtb-[0-9a-f]+)</routeTableId>", "InvalidRouteTableID.NotFound", "route table"),
}
EC2_NOT_FOUND = {
    "vpc-": ("InvalidVpcID.NotFound", "vpc"),
    "subnet-": ("InvalidSubnetID.NotFound", "subnet"),
    "sg-": ("InvalidGroup.NotFound", "security group"),
    "rtb-": ("InvalidRouteTableID.NotFound", "route table"),
}


def ec2_error(code, message):
    body = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>strict</RequestID></Response>"
    return 400, "text/xml", body.encode(), {}


def eks_error(kind, message):
    return 400, "application/json", json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": kind}


def elb_error(code, message):
    body = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>strict</RequestId></ErrorResponse>"
    return 400, "text/xml", body.encode(), {}


def upstream_ec2(region):
    return upstream("ec2", region)


def upstream(service, region):
    """A boto3 client straight to moto, for the rules that look around."""
    import boto3

    return boto3.client(
        service, endpoint_url=ARGS.upstream, region_name=region, aws_access_key_id="strict", aws_secret_access_key="strict"
    )


def eks_update_target(method, path):
    """(key, action) of an EKS update call: the cluster or nodegroup it updates."""
    parts = [p for p in urlparse(path).path.split("/") if p]
    if method != "POST" or len(parts) < 3 or parts[0] != "clusters":
        return None, None
    if len(parts) == 3 and parts[2] == "update-config":
        return ("cluster", parts[1]), "UpdateClusterConfig"
    if len(parts) == 3 and parts[2] == "updates":
        return ("cluster", parts[1]), "UpdateClusterVersion"
    if len(parts) == 5 and parts[2] == "node-groups" and parts[4] == "update-config":
        return ("nodegroup", parts[1], parts[3]), "UpdateNodegroupConfig"
    if len(parts) == 5 and parts[2] == "node-groups" and parts[4] == "update-version":
        return ("nodegroup", parts[1], parts[3]), "UpdateNodegroupVersion"
    return None, None


def igw_attached(ec2, vpc):
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
    return any(a.get("State") in ("available", "attached") for g in igws["InternetGateways"] for a in g.get("Attachments", []))


def target_group_in_use(region, arn):
    elb = upstream("elbv2", region)
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        for listener in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
            for action in listener.get("DefaultActions", []):
                groups = [action.get("TargetGroupArn")] + [
                    t.get("TargetGroupArn") for t in (action.get("ForwardConfig") or {}).get("TargetGroups", [])
                ]
                if arn in groups:
                    return listener["ListenerArn"]
    return None


def security_group_in_use(region, sg):
    """What holds a security group, as EC2 would say it has a dependent object."""
    ec2 = upstream("ec2", region)
    for r in ec2.describe_instances(Filters=[{"Name": "instance.group-id", "Values": [sg]}])["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] not in ("terminated", "shutting-down"):
                return f"instance {i['InstanceId']}"
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        for rule in g.get("IpPermissions", []) + g.get("IpPermissionsEgress", []):
            if g["GroupId"] != sg and any(p.get("GroupId") == sg for p in rule.get("UserIdGroupPairs", [])):
                return f"a rule of {g['GroupId']}"
    for lb in upstream("elbv2", region).describe_load_balancers()["LoadBalancers"]:
        if sg in lb.get("SecurityGroups", []):
            return f"load balancer {lb['LoadBalancerName']}"
    eks = upstream("eks", region)
    for name in eks.list_clusters()["clusters"]:
        if sg in eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"].get("securityGroupIds", []):
            return f"EKS cluster {name}"
    return None


def region_of(headers):
    m = re.search(r"Credential=[^/]+/\d+/([^/]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else "us-east-1"


NAME_RULES = {
    # (service, action): (name parameter, max length, allowed characters, error code)
    ("elasticloadbalancing", "CreateLoadBalancer"): ("Name", 32, r"[A-Za-z0-9-]+", "ValidationError"),
    ("elasticloadbalancing", "CreateTargetGroup"): ("Name", 32, r"[A-Za-z0-9-]+", "ValidationError"),
    ("iam", "CreateRole"): ("RoleName", 64, r"[\w+=,.@-]+", "ValidationError"),
}
TAG_ERRORS = {"ec2": "TagLimitExceeded", "elasticloadbalancing": "TooManyTags", "iam": "LimitExceeded"}


def tags_of_query(q):
    """The tags a query-protocol create carries: (key, value) pairs."""
    keys = {k: v[0] for k, v in q.items() if re.search(r"(Tags\.member\.\d+|Tag\.\d+)\.Key$", k)}
    return [(v, q.get(k[: -len("Key")] + "Value", [""])[0]) for k, v in keys.items()]


def name_limits(service, action, body):
    """AWS's name and tag limits on a create; None when within them."""
    if service not in ("ec2", "elasticloadbalancing", "iam") or not body:
        return None
    q = parse_qs(body.decode(errors="replace"))
    rule = NAME_RULES.get((service, action))
    if rule:
        param, longest, chars, code = rule
        name = q.get(param, [""])[0]
        if not (1 <= len(name) <= longest and re.fullmatch(chars, name)) or name.startswith("-") or name.endswith("-"):
            return error_of(service, code, f"{param} '{name}' must be 1-{longest} characters of {chars}")
    tags = tags_of_query(q)
    per_resource = {}
    for k in q:
        m = re.match(r"TagSpecification\.(\d+)\.Tag\.\d+\.Key$", k)
        if m:
            per_resource[m.group(1)] = per_resource.get(m.group(1), 0) + 1
    count = max(per_resource.values()) if per_resource else len(tags)
    if count > 50:
        return error_of(service, TAG_ERRORS[service], f"{count} tags: the limit is 50 per resource")
    for key, value in tags:
        if len(key) > 128 or len(value) > 256 or key.lower().startswith("aws:"):
            return error_of(service, "InvalidParameterValue" if service == "ec2" else "ValidationError",
                            f"tag {key!r}: keys are 1-128 characters not starting with aws:, values up to 256")
        # EC2 takes any character in a tag; IAM and ELB (as EKS, ACM) only
        # letters, digits, spaces and _ . : / = + - @.
        if service != "ec2" and not (re.fullmatch(TAG_CHARS, key) and re.fullmatch(TAG_CHARS, value)):
            return error_of(service, "ValidationError",
                            f"1 validation error detected: Value '{value}' at 'tags.{key}.member.value' failed to "
                            f"satisfy constraint: Member must satisfy regular expression pattern: [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*")
    return None


# Tag characters outside EC2: letters, separators, numbers and _ . : / = + - @.
TAG_CHARS = r"[\w\s.:/=+\-@]*"


def error_of(service, code, message):
    return ec2_error(code, message) if service == "ec2" else elb_error(code, message)


def strict(service, action, body, headers, method="POST", path="/"):
    """An AWS rule moto does not enforce, answered with AWS's error; None: forward."""
    now = time.time()
    if ARGS.name_limits and (action.startswith("Create") or action in ("AllocateAddress", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress")):
        refused = name_limits(service, action, body)
        if refused:
            return "name-limits", refused
    if ARGS.eks_update_busy and service == "eks":
        key, _ = eks_update_target(method, path)
        with LOCK:
            busy = key is not None and BUSY.get(key, 0) > now
        if busy:
            return "update-in-progress", eks_error(
                "ResourceInUseException", f"An update is already in progress for {' '.join(key)}"
            )
    if ARGS.in_use_delete and service == "elasticloadbalancing" and action == "DeleteTargetGroup" and body:
        arn = parse_qs(body.decode(errors="replace")).get("TargetGroupArn", [""])[0]
        listener = target_group_in_use(region_of(headers), arn)
        if listener:
            return "in-use", elb_error("ResourceInUse", f"Target group '{arn}' is currently in use by a listener or a rule")
    if ARGS.in_use_delete and service == "ec2" and action == "DeleteSecurityGroup" and body:
        sg = parse_qs(body.decode(errors="replace")).get("GroupId", [""])[0]
        holder = sg and security_group_in_use(region_of(headers), sg)
        if holder:
            return "in-use", ec2_error("DependencyViolation", f"resource {sg} has a dependent object ({holder})")
    if ARGS.cert_must_be_issued and service == "elasticloadbalancing" and action in ("CreateListener", "ModifyListener") and body:
        q = parse_qs(body.decode(errors="replace"))
        for k, v in q.items():
            if k.startswith("Certificates.member.") and k.endswith(".CertificateArn"):
                status = upstream("acm", region_of(headers)).describe_certificate(CertificateArn=v[0])["Certificate"]["Status"]
                if status != "ISSUED":
                    return "certificate-not-issued", elb_error(
                        "UnsupportedCertificate",
                        f"The certificate '{v[0]}' must have a fully-qualified domain name, a supported signature, and a supported key size.",
                    )
    if action in (ARGS.deny or []):
        # A least-privilege role: this action is not in its policy.
        message = f"User: arn:aws:sts::123456789012:assumed-role/read-only/slipway is not authorized to perform: {service}:{action}"
        if service in ("iam", "elasticloadbalancing", "autoscaling", "route53", "sts"):
            body = f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message></Error><RequestId>strict</RequestId></ErrorResponse>"
            return "denied", (403, "text/xml", body.encode(), {})
        if service == "ec2":
            return "denied", (403, *ec2_error("UnauthorizedOperation", message)[1:])
        return "denied", (403, "application/json", json.dumps({"message": message}).encode(), {"x-amzn-ErrorType": "AccessDeniedException"})
    if ARGS.iam_propagation and service == "eks" and action == "CreateCluster" and body:
        # EKS cannot assume a role IAM made a moment ago.
        arn = json.loads(body).get("roleArn", "")
        with LOCK:
            made = ROLES.get(arn.rsplit("/", 1)[-1])
        if made and now - made < ARGS.iam_propagation:
            return "iam-propagation", eks_error(
                "InvalidParameterException",
                f"Role with arn: {arn}, could not be assumed because it does not exist or the trusted entity is not right",
            )
    if ARGS.ec2_read_lag and service == "ec2" and action.startswith("Describe") and body:
        # EC2 is eventually consistent: a new ID is not found by Describe for a moment.
        text = body.decode(errors="replace")
        with LOCK:
            young = [i for i, t in FRESH.items() if now - t < ARGS.ec2_read_lag and i in text]
        if young:
            code, what = next(v for k, v in EC2_NOT_FOUND.items() if young[0].startswith(k))
            return "ec2-read-lag", ec2_error(code, f"The {what} ID '{young[0]}' does not exist")
    if ARGS.linger and service == "ec2" and action in ("DeleteSecurityGroup", "DeleteSubnet", "DeleteVpc", "DetachInternetGateway"):
        # A deleted cluster's or load balancer's network interfaces stay a while
        # and hold their subnets and security groups.
        with LOCK:
            lingering = now < LINGER["until"]
        if lingering:
            return "linger", ec2_error("DependencyViolation", "resource has a dependent object")
    if ARGS.igw_required and service == "elasticloadbalancing" and action == "CreateLoadBalancer" and body:
        # An internet-facing load balancer needs its VPC's internet gateway attached.
        q = parse_qs(body.decode(errors="replace"))
        if q.get("Scheme", ["internet-facing"])[0] == "internet-facing":
            subnets = [v[0] for k, v in q.items() if k.startswith("Subnets.member.")]
            if subnets:
                ec2 = upstream_ec2(region_of(headers))
                vpc = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
                igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
                if not igws["InternetGateways"]:
                    return "igw-required", elb_error("InvalidSubnet", f"VPC {vpc} has no internet gateway")
    return None


def remember(service, action, body, status, data, method="POST", path="/", headers=None):
    """What the strict rules need to know of a call that went through."""
    if status >= 300:
        return
    now = time.time()
    if ARGS.eks_update_busy and service == "eks":
        key, _ = eks_update_target(method, path)
        if key is not None:
            try:
                update = json.loads(data).get("update", {})
            except ValueError:
                update = {}
            with LOCK:
                BUSY[key] = now + ARGS.eks_update_busy
                if update.get("id"):
                    UPDATES[update["id"]] = now + ARGS.eks_update_busy
    if ARGS.nat_needs_igw and service == "ec2" and action == "CreateNatGateway":
        q = parse_qs(body.decode(errors="replace"))
        m = re.search(r"<natGatewayId>(nat-[0-9a-f]+)</natGatewayId>", data.decode(errors="replace"))
        if m and q.get("ConnectivityType", ["public"])[0] == "public":
            ec2 = upstream_ec2(region_of(headers or {}))
            vpc = ec2.describe_subnets(SubnetIds=[q["SubnetId"][0]])["Subnets"][0]["VpcId"]
            if not igw_attached(ec2, vpc):
                with LOCK:
                    FAILED_NATS[m.group(1)] = vpc
    if ARGS.linger and ((service == "eks" and action == "DELETE /clusters") or action == "DeleteLoadBalancer"):
        with LOCK:
            LINGER["until"] = now + ARGS.linger
    if service == "iam" and action == "CreateRole" and body:
        name = parse_qs(body.decode(errors="replace")).get("RoleName", [""])[0]
        with LOCK:
            ROLES[name] = now
    if service == "ec2" and action in EC2_NEW:
        m = re.search(EC2_NEW[action][0], data.decode(errors="replace"))
        if m:
            with LOCK:
                FRESH[m.group(1)] = now
LOSE = re.compile(r"^(Create|Allocate|Request|Import|PutObject$)")


def service_of(headers):
    m = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else "unknown"


def action_of(service, method, path, headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if body and b"Action=" in body:
        return parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
    if service == "s3":
        query = urlparse(path).query
        if method == "GET" and ("list-type=2" in query or "versions" in query):
            return "ListObjects"
        return {"PUT": "PutObject", "GET": "GetObject", "DELETE": "DeleteObject", "HEAD": "HeadObject"}.get(method, method)
    if service == "route53":
        parts = [p for p in urlparse(path).path.split("/") if p][1:]
        if parts and parts[-1] == "rrset":
            return "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets"
        if parts == ["hostedzonesbyname"]:
            return "ListHostedZonesByName"
        if len(parts) == 2 and parts[0] == "hostedzone" and method == "GET":
            return "GetHostedZone"
        return f"{method} /{'/'.join(parts[:1])}"
    if service == "eks":
        parts = [p for p in urlparse(path).path.split("/") if p]
        if method == "POST" and parts == ["clusters"]:
            return "CreateCluster"
        if method == "POST" and len(parts) == 3 and parts[2] == "node-groups":
            return "CreateNodegroup"
        if method == "GET" and len(parts) == 2 and parts[0] == "clusters":
            return "DescribeCluster"
        if method == "GET" and len(parts) == 4 and parts[2] == "node-groups":
            return "DescribeNodegroup"
        if method == "GET" and len(parts) == 4 and parts[2] == "updates":
            return "DescribeUpdate"
        _, update = eks_update_target(method, path)
        if update:
            return update
        return f"{method} /{'/'.join(parts[:1])}"
    return "?"


def throttle_response(service):
    """The error each service's SDK parser reads as throttling."""
    if service == "ec2":
        body = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>proxy</RequestID></Response>"
        return 503, "text/xml", body, {}
    if service in ("iam", "elasticloadbalancing", "autoscaling", "route53", "sts"):
        body = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        return 400, "text/xml", body, {}
    if service == "eks":
        return 429, "application/json", b'{"message":"Too Many Requests"}', {"x-amzn-ErrorType": "TooManyRequestsException"}
    if service == "s3":
        return 503, "application/xml", b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>", {}
    return 400, "application/x-amz-json-1.1", b'{"__type":"ThrottlingException","message":"Rate exceeded"}', {}


def server_error(service):
    if service == "s3":
        return 500, "application/xml", b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>", {}
    if service == "ec2":
        return 500, "text/xml", b"<Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred</Message></Error></Errors><RequestID>proxy</RequestID></Response>", {}
    if service in ("iam", "elasticloadbalancing", "autoscaling", "route53", "sts"):
        return 500, "text/xml", b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>internal failure</Message></Error><RequestId>proxy</RequestId></ErrorResponse>", {}
    return 500, "application/json", b'{"__type":"InternalFailure","message":"internal failure"}', {"x-amzn-ErrorType": "InternalFailure"}


def hold_creating(action, path, status, data):
    """Report EKS clusters/nodegroups as CREATING for a while after their create."""
    parts = [p for p in urlparse(path).path.split("/") if p]
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    now = time.time()
    with LOCK:
        if action == "CreateCluster" and status < 300:
            CREATED[("cluster", doc.get("cluster", {}).get("name"))] = now
        elif action == "CreateNodegroup" and status < 300:
            n = doc.get("nodegroup", {})
            CREATED[("nodegroup", n.get("clusterName"), n.get("nodegroupName"))] = now
            if ARGS.eks_nodegroup_failed and len(FAILED_NODEGROUPS) < ARGS.eks_nodegroup_failed:
                FAILED_NODEGROUPS.add(n.get("nodegroupArn"))
        elif action == "DescribeCluster" and "cluster" in doc:
            t = CREATED.get(("cluster", parts[1]))
            if t and now - t < ARGS.eks_cluster_creating:
                doc["cluster"]["status"] = "CREATING"
                return json.dumps(doc).encode()
        elif action == "DescribeNodegroup" and doc.get("nodegroup", {}).get("nodegroupArn") in FAILED_NODEGROUPS:
            # The nodes never joined: EKS gives up on the nodegroup.
            doc["nodegroup"]["status"] = "CREATE_FAILED"
            doc["nodegroup"]["health"] = {"issues": [{
                "code": "AsgInstanceLaunchFailures",
                "message": "Instance failed to join the kubernetes cluster",
                "resourceIds": [],
            }]}
            return json.dumps(doc).encode()
        elif action == "DescribeNodegroup" and "nodegroup" in doc:
            t = CREATED.get(("nodegroup", parts[1], parts[3]))
            if t and now - t < ARGS.eks_nodegroup_creating:
                doc["nodegroup"]["status"] = "CREATING"
                return json.dumps(doc).encode()
    return data


def rewrite(service, action, method, path, data):
    """What AWS would answer where a strict rule changes the state moto reports."""
    now = time.time()
    if ARGS.eks_update_busy and service == "eks" and method == "GET" and "/updates/" in path:
        try:
            doc = json.loads(data)
        except ValueError:
            return data
        with LOCK:
            running = UPDATES.get(doc.get("update", {}).get("id"), 0) > now
        if running:
            doc["update"]["status"] = "InProgress"
            return json.dumps(doc).encode()
    if ARGS.nat_needs_igw and service == "ec2" and action == "DescribeNatGateways" and FAILED_NATS:
        text = data.decode(errors="replace")
        with LOCK:
            failed = dict(FAILED_NATS)
        for nat, vpc in failed.items():
            # The gateway's own <state> is the first after its ID (its
            # addresses come before, its tags after).
            at = text.find(f"<natGatewayId>{nat}</natGatewayId>")
            m = re.compile(r"<state>\w+</state>").search(text, at) if at >= 0 else None
            if m:
                text = (
                    text[: m.start()]
                    + "<state>failed</state><failureCode>Gateway.NotAttached</failureCode>"
                    + f"<failureMessage>Network {vpc} has no Internet gateway attached</failureMessage>"
                    + text[m.end():]
                )
        return text.encode()
    return data


def log(entry):
    if ARGS.log:
        with LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, ctype, body, headers):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _serve(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        service = service_of(self.headers)
        action = action_of(service, self.command, self.path, self.headers, body)
        if ARGS.latency_ms:
            time.sleep(ARGS.latency_ms / 1000.0)
        if ARGS.fail_action and action == ARGS.fail_action:
            with LOCK:
                SEEN[action] = SEEN.get(action, 0) + 1
                down = SEEN[action] > ARGS.fail_after
            if down:
                # The service is down for this action from now on: never forwarded.
                status, ctype, data, hdrs = server_error(service)
                log({"service": service, "action": action, "status": status, "fault": "down"})
                return self._send(status, ctype, data, hdrs)
        with LOCK:
            roll = RNG.random()
        if roll < ARGS.throttle:
            status, ctype, data, hdrs = throttle_response(service)
            log({"service": service, "action": action, "status": status, "fault": "throttle"})
            return self._send(status, ctype, data, hdrs)
        if roll < ARGS.throttle + ARGS.error5xx:
            status, ctype, data, hdrs = server_error(service)
            log({"service": service, "action": action, "status": status, "fault": "5xx"})
            return self._send(status, ctype, data, hdrs)
        refused = strict(service, action, body, self.headers, self.command, self.path)
        if refused:
            rule, (status, ctype, data, hdrs) = refused
            log({"service": service, "action": action, "status": status, "fault": rule})
            return self._send(status, ctype, data, hdrs)
        up = urlparse(ARGS.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        ctype = resp.getheader("Content-Type", "application/octet-stream")
        extra = {k: v for k, v in resp.getheaders() if k.lower().startswith("x-amz") or k.lower() in ("etag", "last-modified")}
        conn.close()
        with LOCK:
            lose = LOSE.match(action) and resp.status < 300 and RNG.random() < ARGS.lose
        if lose:
            status, ctype2, data2, hdrs = server_error(service)
            log({"service": service, "action": action, "status": status, "fault": "lost-response", "upstream": resp.status})
            return self._send(503, ctype2, data2, hdrs)
        remember(service, action, body, resp.status, data, self.command, self.path, self.headers)
        if service == "eks":
            data = hold_creating(action, self.path, resp.status, data)
        data = rewrite(service, action, self.command, self.path, data)
        entry = {"service": service, "action": action, "status": resp.status, "fault": None}
        if service == "eks" and body:
            # EKS takes JSON: the request is logged so tests can check what
            # moto ignores (accessConfig, say). No EKS request holds a secret.
            try:
                entry["request"] = json.loads(body)
            except ValueError:
                pass
        if service == "acm" and action == "DescribeCertificate" and resp.status < 300:
            # The status ACM answered, so tests can order it against other calls.
            try:
                entry["certificate_status"] = json.loads(data).get("Certificate", {}).get("Status")
            except ValueError:
                pass
        if service == "elasticloadbalancing" and action == "CreateListener" and body:
            entry["port"] = parse_qs(body.decode(errors="replace")).get("Port", [None])[0]
        log(entry)
        self._send(resp.status, ctype, data, extra)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--throttle", type=float, default=0.0)
    p.add_argument("--error5xx", type=float, default=0.0)
    p.add_argument("--lose", type=float, default=0.0)
    p.add_argument("--eks-cluster-creating", type=float, default=0.0)
    p.add_argument("--eks-nodegroup-creating", type=float, default=0.0)
    p.add_argument("--fail-action", default=None, help="answer 500 to every call of this action after --fail-after of them")
    p.add_argument("--fail-after", type=int, default=0)
    p.add_argument("--iam-propagation", type=float, default=0.0, help="EKS CreateCluster refuses a role for S seconds after CreateRole")
    p.add_argument("--ec2-read-lag", type=float, default=0.0, help="EC2 Describe* does not find a new VPC/subnet/SG/route table for S seconds")
    p.add_argument("--igw-required", action="store_true", help="an internet-facing ALB needs its VPC's internet gateway attached")
    p.add_argument("--deny", action="append", help="answer AccessDenied to this action (repeatable): a least-privilege role")
    p.add_argument("--linger", type=float, default=0.0, help="DependencyViolation on subnet/SG/VPC deletes for S seconds after a cluster or ALB delete")
    p.add_argument("--eks-nodegroup-failed", type=int, default=0, help="report the first N nodegroups created as CREATE_FAILED")
    p.add_argument("--eks-update-busy", type=float, default=0.0, help="an EKS update runs S seconds: DescribeUpdate InProgress, another update ResourceInUseException")
    p.add_argument("--in-use-delete", action="store_true", help="refuse deleting a target group a listener uses, or a security group something carries or names")
    p.add_argument("--nat-needs-igw", action="store_true", help="a public NAT gateway in a VPC without an attached internet gateway turns failed (Gateway.NotAttached)")
    p.add_argument("--cert-must-be-issued", action="store_true", help="an HTTPS listener with a certificate that is not ISSUED answers UnsupportedCertificate")
    p.add_argument("--name-limits", action="store_true", help="AWS's name and tag limits: 32-character ELB names, 64-character role names, 50 tags, key/value lengths")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--log", default=None)
    ARGS = p.parse_args()
    if ARGS.seed is not None:
        RNG.seed(ARGS.seed)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Proxy)
    server.daemon_threads = True
    server.serve_forever()
