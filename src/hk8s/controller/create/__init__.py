"""``hk8s create``: the whole cluster from cluster.yaml, converging on every re-run.

Phases (``create_cluster``, ``_command``), each idempotent:

1. secrets: loaded, or generated before the first server exists (``hk8s.controller._secrets``);
   a configured node that runs other versions than the config is refused: that is an upgrade
   (``_skew``);
2. snapshots per architecture (``hk8s.controller.image``);
3. one plan for infra and servers (``hk8s.controller.infra``, the servers component), applied
   by the ``Reconciler``; then Hetzner delete protection as the config says (``_protection``);
4. machine configs to new and changed nodes, meanwhile etcd bootstrap and membership;
5. kubeconfig and talosconfig; addons and every node Ready;
6. removals of scaled-down servers, one at a time; the health gate.
"""
