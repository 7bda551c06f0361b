"""``hk8s node reboot|reset|replace``: act on one node without breaking the cluster.

Phases (``NodeOps``, ``_ops``): refuse what would cost etcd its quorum (``quorum_refusal``)
-> cordon and drain -> reboot, reset or replace (the scale-down path of
``hk8s.controller._scale``) -> wait for the node (or its removal) -> gate on the cluster's
health.
"""
