"""``hk8s infra``: a cluster's base infrastructure (network + subnet, firewall, placement
groups, API load balancer), and the first component ``create`` and ``plan`` reconcile.

Phases, one ``Reconciler`` pass of ``InfraComponent`` (``_component``):

1. desired: the config's slice (``InfraIntent``, firewall sources resolved) -> the specs every
   resource should have, by name and labels (``_desired``, pure);
2. observe and diff: four list calls by label, compared with the specs (``_diff``);
3. apply: the operations, through handlers that adopt only the cluster's own resources and
   treat "already so" as success (``_apply``).

Imports only the shared machinery of ``hk8s.controller``; ``create``, ``doctor`` and the CLI
import it. Public names are re-exported by ``hk8s.controller``.
"""
