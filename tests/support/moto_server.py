"""moto's server with the AWS behaviour slipway depends on that moto 5.2.1 lacks.

Run as `python3 tests/support/moto_server.py -H 127.0.0.1 -p PORT` (the same
arguments as `python3 -m moto.server`). Each patch makes moto answer as AWS
does, never more leniently:

- EKS TagResource / UntagResource on a managed nodegroup's ARN: AWS tags
  nodegroups (https://docs.aws.amazon.com/eks/latest/APIReference/API_TagResource.html),
  moto tags only clusters and answers NotFound for a nodegroup.
- DescribeSecurityGroupRules keeps the description of a rule whose source is
  a security group (moto drops it).
- EKS plays its part in EC2 and Auto Scaling, as AWS does and moto does not:
  CreateCluster makes the cluster security group (`eks-cluster-sg-NAME-ID`
  in the cluster's VPC, all traffic from itself, all out, tagged
  `aws:eks:cluster-name` and `kubernetes.io/cluster/NAME = owned`) and
  DescribeCluster reports it as `resourcesVpcConfig.clusterSecurityGroupId`;
  DeleteCluster deletes it. CreateNodegroup makes the Auto Scaling group its
  answer names (`resources.autoScalingGroups[0].name`) from a launch template
  whose instances carry the cluster security group, in the nodegroup's subnets
  and sizes, tagged `eks:cluster-name` / `eks:nodegroup-name`; a scaling
  update resizes it; DeleteNodegroup deletes both. moto's autoscaling then
  registers the group's instances in the target groups attached to it.
- EKS accessConfig: CreateCluster keeps the request's `authenticationMode`
  (EKS's default when absent: `CONFIG_MAP`) and DescribeCluster reports it;
  UpdateClusterConfig changes it. moto drops it.
- CloudFormation names the IAM roles it makes within IAM's 64 characters
  (moto's names can be longer, which IAM refuses). Like AWS, DescribeCluster
  does not report `bootstrapClusterCreatorAdminPermissions` reliably
  (terraform-provider-aws#35824), so this reports none.
- ACM issues a DNS-validated certificate only when Route53 answers its
  validation CNAMEs: a pending certificate turns ISSUED (after moto's
  MOTO_ACM_VALIDATION_WAIT) only if every validation record exists, with its
  value, in a hosted zone of the account. moto issues it regardless.
- EKS access entries and add-ons, which moto lacks: Create/Describe/Update/
  Delete/ListAccessEntries, Associate/Disassociate/ListAssociatedAccessPolicies
  (refused, as EKS refuses them, on a cluster in CONFIG_MAP mode), and
  Create/Describe/Update/Delete/ListAddons and DescribeAddonVersions (a small
  catalogue: vpc-cni, coredns, kube-proxy, metrics-server; an add-on is ACTIVE
  at once, as moto's clusters are). A cluster's entries and add-ons go with it.
- EKS UpdateClusterConfig answers with the update it started and merges the
  VPC config fields it names (moto answers with the cluster and replaces the
  whole VPC config); DescribeUpdate follows it and a nodegroup's
  UpdateNodegroupConfig (done at once).
- CreateAccessEntry refuses a principal IAM does not have, and Route53
  refuses a record outside its zone's domain, as AWS does (moto takes both).
- IAM authorization (on once a test POSTs `/moto-api/reset-auth`) judges a
  statement by its Action. moto hands the policy check no resource ARN and no
  request context, so as shipped a statement with a `Resource` ARN never
  allows and one with a `Condition` denies every action it names, which no
  AWS account does. Here an Allow statement allows the actions it names
  whatever its Resource and Condition, and a Deny statement denies only when
  it has neither: a test through this proves a policy names every action a
  run calls, not that its ARNs and tag conditions match (see README).
  moto recomputes the SigV4 signature of REST calls (Route53, EKS) wrongly and
  refuses even boto3's, so the signature is not checked: the access key ID
  still decides whose policies apply. A refused call is answered in its
  service's own error format, as AWS answers it: EC2 UnauthorizedOperation,
  EKS and ACM AccessDeniedException (JSON), the others AccessDenied (moto
  answers every service in IAM's XML, which JSON clients cannot read).
"""

import json
import sys

from moto.acm import models as acm_models
from moto.ec2.models import security_groups as sg_models
from moto.eks import models as eks
from moto.core.responses import ActionResult
from moto.eks import responses as eks_responses

_tag, _untag = eks.EKSBackend.tag_resource, eks.EKSBackend.untag_resource


def _nodegroup(backend, arn):
    for cluster in backend.clusters.values():
        for ng in cluster.nodegroups.values():
            if ng.arn == arn:
                return ng
    return None


def tag_resource(self, resource_arn, tags):
    ng = _nodegroup(self, resource_arn)
    if ng is None:
        return _tag(self, resource_arn, tags)
    ng.tags = dict(ng.tags or {})
    ng.tags.update(tags)


def untag_resource(self, resource_arn, tag_keys):
    ng = _nodegroup(self, resource_arn)
    if ng is None:
        return _untag(self, resource_arn, tag_keys)
    if not isinstance(tag_keys, list):
        tag_keys = [tag_keys]
    ng.tags = {k: v for k, v in (ng.tags or {}).items() if k not in tag_keys}


eks.EKSBackend.tag_resource = tag_resource
eks.EKSBackend.untag_resource = untag_resource


def _rule_description(self):
    # AWS keeps a rule's description whatever its source; moto reads it
    # only from a CIDR range and drops it for a source security group.
    return self.ip_range.get("Description") or (self.source_group or {}).get("Description")


sg_models.SecurityGroupRule.description = property(_rule_description)

# moto's own image that its EC2 knows in every region.
NODE_IMAGE = "ami-12c6146b"


def _ec2(backend):
    from moto.ec2.models import ec2_backends

    return ec2_backends[backend.account_id][backend.region_name]


def _autoscaling(backend):
    from moto.autoscaling.models import autoscaling_backends

    return autoscaling_backends[backend.account_id][backend.region_name]


_create_cluster = eks.EKSBackend.create_cluster
_delete_cluster = eks.EKSBackend.delete_cluster
_update_cluster_config = eks.EKSBackend.update_cluster_config


def create_cluster(self, *args, **kwargs):
    ec2 = _ec2(self)
    asked = kwargs.get("resources_vpc_config") or {}
    known = {s for zone in ec2.subnets.values() for s in zone}
    for subnet in asked.get("subnetIds") or []:
        if subnet not in known:
            # EKS checks the subnets exist before it makes anything.
            raise eks.InvalidParameterException(message=f"The subnet ID '{subnet}' does not exist")
    cluster = _create_cluster(self, *args, **kwargs)
    vpc_config = dict(cluster.resources_vpc_config or {})
    subnets = vpc_config.get("subnetIds") or []
    vpc_id = ec2.get_subnet(subnets[0]).vpc_id if subnets else None
    group = ec2.create_security_group(
        name=f"eks-cluster-sg-{cluster.name}-{cluster.arn[-8:].replace('/', '')}",
        description="EKS created security group applied to ENI that is attached to EKS Control Plane "
        "master nodes, as well as any managed workloads.",
        vpc_id=vpc_id,
        tags={"aws:eks:cluster-name": cluster.name, f"kubernetes.io/cluster/{cluster.name}": "owned"},
    )
    ec2.authorize_security_group_ingress(
        group_name_or_id=group.id,
        ip_protocol="-1",
        from_port=None,
        to_port=None,
        ip_ranges=[],
        source_groups=[{"GroupId": group.id}],
    )
    vpc_config["clusterSecurityGroupId"] = group.id
    cluster.resources_vpc_config = vpc_config
    return cluster


def update_cluster_config(self, name, resources_vpc_config, *args, **kwargs):
    # EKS changes only the fields an update names (moto replaces the whole
    # VPC config) and keeps the cluster security group it made.
    cluster = self.clusters.get(name)
    before = dict(cluster.resources_vpc_config or {}) if cluster else {}
    out = _update_cluster_config(self, name, resources_vpc_config, *args, **kwargs)
    if cluster and resources_vpc_config:
        merged = dict(before)
        merged.update(resources_vpc_config)
        if before.get("clusterSecurityGroupId"):
            merged["clusterSecurityGroupId"] = before["clusterSecurityGroupId"]
        cluster.resources_vpc_config = merged
    return out


def delete_cluster(self, name):
    cluster = self.clusters.get(name)
    group = (cluster.resources_vpc_config or {}).get("clusterSecurityGroupId") if cluster else None
    out = _delete_cluster(self, name)
    if group:
        try:
            _ec2(self).delete_security_group(group_id=group)
        except Exception:  # noqa: BLE001 already gone
            pass
    return out


_create_nodegroup = eks.EKSBackend.create_nodegroup
_delete_nodegroup = eks.EKSBackend.delete_nodegroup
_update_nodegroup_config = eks.EKSBackend.update_nodegroup_config


def _asg_name(ng):
    return ng.resources["autoScalingGroups"][0]["name"]


def create_nodegroup(self, *args, **kwargs):
    ng = _create_nodegroup(self, *args, **kwargs)
    cluster = self.clusters[ng.cluster_name]
    group = (cluster.resources_vpc_config or {}).get("clusterSecurityGroupId")
    name = _asg_name(ng)
    ec2 = _ec2(self)
    data = {"ImageId": NODE_IMAGE, "InstanceType": (ng.instance_types or ["t3.medium"])[0]}
    if group:
        data["SecurityGroupIds"] = [group]
    template = ec2.create_launch_template(name=name, description="EKS managed nodegroup", template_data=data, tag_spec={})
    sizes = ng.scaling_config or {}
    _autoscaling(self).create_auto_scaling_group(
        name=name,
        availability_zones=[],
        desired_capacity=sizes.get("desiredSize", 2),
        max_size=sizes.get("maxSize", 2),
        min_size=sizes.get("minSize", 1),
        launch_config_name=None,
        launch_template={"LaunchTemplateId": template.id, "Version": "$Latest"},
        vpc_zone_identifier=",".join(ng.subnets),
        default_cooldown=None,
        health_check_period=None,
        health_check_type=None,
        load_balancers=[],
        target_group_arns=[],
        placement_group=None,
        termination_policies=[],
        tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": True}
            for k, v in {
                "eks:cluster-name": ng.cluster_name,
                "eks:nodegroup-name": ng.nodegroup_name,
                f"kubernetes.io/cluster/{ng.cluster_name}": "owned",
            }.items()
        ],
    )
    return ng


def update_nodegroup_config(self, cluster_name, nodegroup_name, *args, **kwargs):
    out = _update_nodegroup_config(self, cluster_name, nodegroup_name, *args, **kwargs)
    ng = self.clusters[cluster_name].nodegroups[nodegroup_name]
    sizes = ng.scaling_config or {}
    asg = _autoscaling(self).autoscaling_groups.get(_asg_name(ng))
    if asg is not None and kwargs.get("scaling_config"):
        asg.min_size = sizes.get("minSize", asg.min_size)
        asg.max_size = sizes.get("maxSize", asg.max_size)
        asg.set_desired_capacity(sizes.get("desiredSize", asg.desired_capacity))
    # DescribeUpdate follows a nodegroup's update as it does a cluster's (moto forgets it).
    cluster = self.clusters[cluster_name]
    if not hasattr(cluster, "updates"):
        cluster.updates = {}
    cluster.updates[out["id"]] = out
    return out


def delete_nodegroup(self, cluster_name, nodegroup_name):
    ng = self.clusters.get(cluster_name) and self.clusters[cluster_name].nodegroups.get(nodegroup_name)
    out = _delete_nodegroup(self, cluster_name, nodegroup_name)
    if ng:
        name = _asg_name(ng)
        autoscaling = _autoscaling(self)
        if name in autoscaling.autoscaling_groups:
            autoscaling.delete_auto_scaling_group(name)
        ec2 = _ec2(self)
        for t in list(ec2.launch_templates.values()):
            if t.name == name:
                ec2.delete_launch_template(name, None)
    return out


# CloudFormation keeps the names it makes for IAM roles within IAM's 64
# characters (moto does not, and makes names IAM would refuse).
from moto.cloudformation import parsing as cfn_parsing

_generate_resource_name = cfn_parsing.generate_resource_name


def generate_resource_name(resource_type, stack_name, logical_id):
    if resource_type == "AWS::IAM::Role":
        suffix = cfn_parsing.random_suffix()
        prefix = f"{stack_name}-{logical_id}"[: 64 - len(suffix) - 1].rstrip("-")
        return f"{prefix}-{suffix}"
    return _generate_resource_name(resource_type, stack_name, logical_id)


cfn_parsing.generate_resource_name = generate_resource_name

# Route53 keeps a zone's records inside the zone's domain.
from moto.route53 import exceptions as r53_exceptions
from moto.route53 import models as r53_models

_change_record_sets = r53_models.Route53Backend.change_resource_record_sets


def change_resource_record_sets(self, zoneid, change_list):
    zone = self.get_hosted_zone(zoneid)
    domain = zone.name.rstrip(".").lower()
    for value in change_list:
        name = value["ResourceRecordSet"]["Name"].rstrip(".").lower()
        if name != domain and not name.endswith("." + domain):
            raise r53_exceptions.Route53ClientError(
                "InvalidChangeBatch", f"RRSet with DNS name {name}. is not permitted in zone {domain}."
            )
    return _change_record_sets(self, zoneid, change_list)


r53_models.Route53Backend.change_resource_record_sets = change_resource_record_sets

_acm_check = acm_models.CertBundle.check


def _answers(account_id, name, value):
    from moto.route53.models import route53_backends

    def norm(v):
        return (v.get("Value") if isinstance(v, dict) else str(v)).rstrip(".").lower()

    for zone in route53_backends[account_id]["global"].zones.values():
        for r in zone.rrsets:
            if r.type == "CNAME" and r.name.rstrip(".").lower() == name and value in [norm(v) for v in r.records]:
                return True
    return False


def acm_check(self):
    was = self.status
    _acm_check(self)
    if was == "PENDING_VALIDATION" and self.status == "ISSUED" and self.type == "AMAZON_ISSUED":
        account_id = self.arn.split(":")[4]
        options = self.describe()["Certificate"].get("DomainValidationOptions", [])
        for o in options:
            rr = o["ResourceRecord"]
            if not _answers(account_id, rr["Name"].rstrip(".").lower(), rr["Value"].rstrip(".").lower()):
                self.status = "PENDING_VALIDATION"
                return


acm_models.CertBundle.check = acm_check

_response_create_cluster = eks_responses.EKSResponse.create_cluster
_response_update_cluster_config = eks_responses.EKSResponse.update_cluster_config


def response_create_cluster(self):
    out = _response_create_cluster(self)
    asked = self._get_param("accessConfig") or {}
    cluster = self.eks_backend.clusters.get(self._get_param("name"))
    if cluster is not None:
        cluster.access_config = {"authenticationMode": asked.get("authenticationMode", "CONFIG_MAP")}
    return out


def response_update_cluster_config(self):
    # EKS answers with the update it started (moto with the cluster) and
    # lets DescribeUpdate follow it; moto's updates are done at once.
    asked = self._get_param("accessConfig") or {}
    _response_update_cluster_config(self)
    cluster = self.eks_backend.clusters.get(self._get_param("name"))
    if cluster is not None and asked.get("authenticationMode"):
        config = dict(getattr(cluster, "access_config", None) or {})
        config["authenticationMode"] = asked["authenticationMode"]
        cluster.access_config = config
    kind = (
        "AccessConfigUpdate" if asked
        else "LoggingUpdate" if self._get_param("logging")
        else "VpcConfigUpdate" if (self._get_param("resourcesVpcConfig") or {}).get("subnetIds")
        else "EndpointAccessUpdate"
    )
    return ActionResult({"update": _record_update(cluster, kind)})


def _record_update(cluster, kind):
    import uuid

    update = {"id": str(uuid.uuid4()), "status": "Successful", "type": kind, "params": [], "createdAt": _now(), "errors": []}
    if cluster is not None:
        if not hasattr(cluster, "updates"):
            cluster.updates = {}
        cluster.updates[update["id"]] = update
    return update


def describe_update(self):
    cluster = _cluster_of(self)
    update = getattr(cluster, "updates", {}).get(self._get_param("updateId"))
    if update is None:
        raise _not_found(cluster.name, f"No update found for ID: {self._get_param('updateId')}")
    return ActionResult({"update": update})


# --- EKS access entries and add-ons -------------------------------------------

from datetime import datetime, timezone

from moto.eks import urls as eks_urls

_ENTRY = r"{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+?)"
eks_urls.url_paths.update(
    {
        "{0}/clusters/(?P<name>[^/]+)/access-entries$": eks_responses.EKSResponse.dispatch,
        _ENTRY + "$": eks_responses.EKSResponse.dispatch,
        _ENTRY + "/access-policies$": eks_responses.EKSResponse.dispatch,
        _ENTRY + "/access-policies/(?P<policyArn>.+)$": eks_responses.EKSResponse.dispatch,
        "{0}/clusters/(?P<name>[^/]+)/addons$": eks_responses.EKSResponse.dispatch,
        "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$": eks_responses.EKSResponse.dispatch,
        "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$": eks_responses.EKSResponse.dispatch,
        "{0}/addons/supported-versions$": eks_responses.EKSResponse.dispatch,
        "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$": eks_responses.EKSResponse.dispatch,
    }
)

# What DescribeAddonVersions offers, per add-on: (version, default for these cluster versions).
ADDON_CATALOGUE = {
    "vpc-cni": ("aws", [("v1.19.2-eksbuild.1", True), ("v1.18.6-eksbuild.1", False)]),
    "coredns": ("aws", [("v1.11.4-eksbuild.2", True), ("v1.11.3-eksbuild.1", False)]),
    "kube-proxy": ("aws", [("v1.31.3-eksbuild.2", True)]),
    "metrics-server": ("community", [("v0.7.2-eksbuild.1", True), ("v0.7.1-eksbuild.1", False)]),
}
CLUSTER_VERSIONS = ["1.29", "1.30", "1.31", "1.32"]


def _not_found(cluster, message, addon=None):
    return eks.ResourceNotFoundException(
        clusterName=cluster, nodegroupName=None, fargateProfileName=None, addonName=addon, message=message
    )


def _now():
    return datetime.now(timezone.utc)


def _cluster_of(self):
    name = self._get_param("name")
    cluster = self.eks_backend.clusters.get(name)
    if cluster is None:
        raise _not_found(name, f"No cluster found for name: {name}.")
    if not hasattr(cluster, "access_entries"):
        cluster.access_entries = {}
        cluster.addons = {}
    return cluster


def _entry_of(self, cluster):
    principal = self._get_param("principalArn")
    entry = cluster.access_entries.get(principal)
    if entry is None:
        raise _not_found(cluster.name, f"The specified access entry resource is not found: {principal}")
    return entry


def _api_mode(cluster):
    mode = (getattr(cluster, "access_config", None) or {}).get("authenticationMode", "CONFIG_MAP")
    if mode == "CONFIG_MAP":
        raise eks.InvalidRequestException(
            message="The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation."
        )


def _principal_exists(account_id, arn):
    from moto.iam.models import iam_backends

    iam = iam_backends[account_id]["global"]
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    try:
        (iam.get_role if kind == "role" else iam.get_user)(name)
        return True
    except Exception:  # noqa: BLE001 NoSuchEntity
        return False


def create_access_entry(self):
    cluster = _cluster_of(self)
    _api_mode(cluster)
    principal = self._get_param("principalArn")
    if not _principal_exists(self.current_account, principal):
        # EKS checks the principal exists in IAM.
        raise eks.InvalidParameterException(message=f"The specified principalArn is invalid: invalid principal {principal}")
    if principal in cluster.access_entries:
        raise eks.ResourceInUseException(
            clusterName=cluster.name, nodegroupName=None, addonName=None,
            message=f"The specified access entry resource is already in use on this cluster: {principal}",
        )
    now = _now()
    entry = {
        "clusterName": cluster.name,
        "principalArn": principal,
        "kubernetesGroups": self._get_param("kubernetesGroups") or [],
        "accessEntryArn": f"{cluster.arn.replace(':cluster/', ':access-entry/')}/{len(cluster.access_entries)}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": self._get_param("tags") or {},
        "username": self._get_param("username") or principal,
        "type": self._get_param("type") or "STANDARD",
        "policies": {},
    }
    cluster.access_entries[principal] = entry
    return ActionResult({"accessEntry": _shown(entry)})


def _shown(entry):
    return {k: v for k, v in entry.items() if k != "policies"}


def describe_access_entry(self):
    cluster = _cluster_of(self)
    return ActionResult({"accessEntry": _shown(_entry_of(self, cluster))})


def update_access_entry(self):
    cluster = _cluster_of(self)
    entry = _entry_of(self, cluster)
    if self._get_param("kubernetesGroups") is not None:
        entry["kubernetesGroups"] = self._get_param("kubernetesGroups")
    if self._get_param("username"):
        entry["username"] = self._get_param("username")
    entry["modifiedAt"] = _now()
    return ActionResult({"accessEntry": _shown(entry)})


def delete_access_entry(self):
    cluster = _cluster_of(self)
    _entry_of(self, cluster)
    del cluster.access_entries[self._get_param("principalArn")]
    return ActionResult({})


def list_access_entries(self):
    cluster = _cluster_of(self)
    return ActionResult({"accessEntries": sorted(cluster.access_entries)})


def associate_access_policy(self):
    cluster = _cluster_of(self)
    _api_mode(cluster)
    entry = _entry_of(self, cluster)
    now = _now()
    policy = {
        "policyArn": self._get_param("policyArn"),
        "accessScope": self._get_param("accessScope") or {"type": "cluster"},
        "associatedAt": now,
        "modifiedAt": now,
    }
    entry["policies"][policy["policyArn"]] = policy
    return ActionResult({"clusterName": cluster.name, "principalArn": entry["principalArn"], "associatedAccessPolicy": policy})


def list_associated_access_policies(self):
    cluster = _cluster_of(self)
    entry = _entry_of(self, cluster)
    return ActionResult(
        {
            "clusterName": cluster.name,
            "principalArn": entry["principalArn"],
            "associatedAccessPolicies": list(entry["policies"].values()),
        }
    )


def disassociate_access_policy(self):
    cluster = _cluster_of(self)
    entry = _entry_of(self, cluster)
    entry["policies"].pop(self._get_param("policyArn"), None)
    return ActionResult({})


def _addon_of(self, cluster):
    name = self._get_param("addonName")
    addon = cluster.addons.get(name)
    if addon is None:
        raise _not_found(cluster.name, f"No addon: {name} found in cluster: {cluster.name}", addon=name)
    return addon


def _default_version(name):
    return next(v for v, default in ADDON_CATALOGUE[name][1] if default)


def create_addon(self):
    cluster = _cluster_of(self)
    name = self._get_param("addonName")
    if name not in ADDON_CATALOGUE:
        raise eks.InvalidParameterException(message=f"Addon {name} specified is not supported in {cluster.version} cluster version")
    if name in cluster.addons:
        raise eks.ResourceInUseException(
            clusterName=cluster.name, nodegroupName=None, addonName=name, message=f"Addon already exists: {name}"
        )
    version = self._get_param("addonVersion") or _default_version(name)
    if version not in [v for v, _ in ADDON_CATALOGUE[name][1]]:
        raise eks.InvalidParameterException(message=f"Addon version specified is not supported: {name} {version}")
    now = _now()
    addon = {
        "addonName": name,
        "clusterName": cluster.name,
        "status": "ACTIVE",
        "addonVersion": version,
        "health": {"issues": []},
        "addonArn": f"{cluster.arn.replace(':cluster/', ':addon/')}/{name}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": self._get_param("tags") or {},
    }
    for key in ("serviceAccountRoleArn", "configurationValues"):
        if self._get_param(key):
            addon[key] = self._get_param(key)
    cluster.addons[name] = addon
    return ActionResult({"addon": addon})


def describe_addon(self):
    cluster = _cluster_of(self)
    return ActionResult({"addon": _addon_of(self, cluster)})


def update_addon(self):
    cluster = _cluster_of(self)
    addon = _addon_of(self, cluster)
    version = self._get_param("addonVersion")
    if version:
        if version not in [v for v, _ in ADDON_CATALOGUE[addon["addonName"]][1]]:
            raise eks.InvalidParameterException(message=f"Addon version specified is not supported: {version}")
        addon["addonVersion"] = version
    for key in ("serviceAccountRoleArn", "configurationValues"):
        if self._get_param(key) is not None:
            addon[key] = self._get_param(key)
    addon["modifiedAt"] = _now()
    update = {"id": f"addon-update-{addon['modifiedAt'].timestamp()}", "status": "Successful", "type": "AddonUpdate",
              "params": [], "createdAt": addon["modifiedAt"], "errors": []}
    return ActionResult({"update": update})


def delete_addon(self):
    cluster = _cluster_of(self)
    addon = _addon_of(self, cluster)
    del cluster.addons[addon["addonName"]]
    return ActionResult({"addon": dict(addon, status="DELETING")})


def list_addons(self):
    cluster = _cluster_of(self)
    return ActionResult({"addons": sorted(cluster.addons)})


def describe_addon_versions(self):
    wanted = self._get_param("addonName")
    version = self._get_param("kubernetesVersion")
    out = []
    for name, (kind, versions) in ADDON_CATALOGUE.items():
        if wanted and name != wanted:
            continue
        clusters = [version] if version else CLUSTER_VERSIONS
        out.append(
            {
                "addonName": name,
                "type": "networking" if kind == "aws" else "observability",
                "owner": kind,
                "addonVersions": [
                    {
                        "addonVersion": v,
                        "compatibilities": [{"clusterVersion": c, "defaultVersion": default} for c in clusters],
                    }
                    for v, default in versions
                ],
            }
        )
    return ActionResult({"addons": out})


for _name, _fn in list(globals().items()):
    if _name in (
        "create_access_entry", "describe_access_entry", "update_access_entry", "delete_access_entry",
        "list_access_entries", "associate_access_policy", "list_associated_access_policies",
        "disassociate_access_policy", "create_addon", "describe_addon", "update_addon", "delete_addon",
        "list_addons", "describe_addon_versions", "describe_update",
    ):
        setattr(eks_responses.EKSResponse, _name, _fn)

eks_responses.EKSResponse.create_cluster = response_create_cluster
eks_responses.EKSResponse.update_cluster_config = response_update_cluster_config
eks.EKSBackend.create_cluster = create_cluster
eks.EKSBackend.update_cluster_config = update_cluster_config
eks.EKSBackend.delete_cluster = delete_cluster
eks.EKSBackend.create_nodegroup = create_nodegroup
eks.EKSBackend.update_nodegroup_config = update_nodegroup_config
eks.EKSBackend.delete_nodegroup = delete_nodegroup

from moto.iam import access_control as iam_access

_is_action_permitted = iam_access.IAMPolicyStatement.is_action_permitted


def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
    if principal is not None:
        # A trust policy (AssumeRole): moto's own judgement.
        return _is_action_permitted(self, action, resource, principal, incoming_condition_values)
    st = self._statement
    if "NotAction" in st:
        concerned = not self._check_element_matches("NotAction", action)
    else:
        concerned = self._check_element_matches("Action", action)
    if not concerned:
        return iam_access.PermissionResult.NEUTRAL
    if st.get("Effect") == "Allow":
        return iam_access.PermissionResult.PERMITTED
    scoped = "Condition" in st or st.get("Resource", "*") not in ("*", ["*"])
    return iam_access.PermissionResult.NEUTRAL if scoped else iam_access.PermissionResult.DENIED


iam_access.IAMPolicyStatement.is_action_permitted = is_action_permitted
iam_access.IAMRequestBase.check_signature = lambda self: None

from moto.core.exceptions import _RESTError


class _Denied(_RESTError):
    code = 403

    def __init__(self, service, arn, action):
        super().__init__("AccessDenied", "")
        message = f"User: {arn} is not authorized to perform: {action}"
        if service in ("eks", "acm"):
            self.error_type = "AccessDeniedException"
            self.description = json.dumps({"__type": self.error_type, "message": message})
            self.content_type = "application/json"
        elif service == "ec2":
            self.error_type = "UnauthorizedOperation"
            self.description = (
                "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to "
                f"perform this operation. {message}</Message></Error></Errors><RequestID>denied</RequestID></Response>"
            )
            self.content_type = "text/xml"
        else:
            self.description = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                f"<Message>{message}</Message></Error><RequestId>denied</RequestId></ErrorResponse>"
            )
            self.content_type = "text/xml"


def _raise_access_denied(self):
    raise _Denied(self._service, self._access_key.arn, self._action)


iam_access.IAMRequest._raise_access_denied = _raise_access_denied

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
