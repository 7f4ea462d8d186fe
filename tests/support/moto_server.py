"""moto's server with the AWS behaviour slipway depends on that moto 5.2.1 lacks.

Run as `python3 tests/support/moto_server.py -H 127.0.0.1 -p PORT` (the same
arguments as `python3 -m moto.server`). Each patch makes moto answer as AWS
does, never more leniently:

- EKS TagResource / UntagResource on a managed nodegroup's ARN: AWS tags
  nodegroups (https://docs.aws.amazon.com/eks/latest/APIReference/API_TagResource.html),
  moto tags only clusters and answers NotFound for a nodegroup.
"""

import sys

from moto.eks import models as eks

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

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
