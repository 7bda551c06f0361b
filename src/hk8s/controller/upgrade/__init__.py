"""``hk8s upgrade``: a rolling Talos and/or Kubernetes upgrade to the versions in cluster.yaml.

Phases (``upgrade_cluster``, ``_command``):

1. observe what each node runs: Talos release, kubelet and control-plane pod versions, config
   hash, an interrupted run's mark (``_observe``, over ``hk8s.controller._releases``);
2. plan: one step per node and phase, Talos before Kubernetes, control planes one at a time
   before workers; a path upstream does not support is refused before anything changes
   (``_plan``, pure);
3. images: the snapshots and installer of the target release (``hk8s.controller.image``);
4. roll out node by node (``_node``): Talos = cordon, drain, Upgrade, back at the new
   release, config, Ready, uncordon; Kubernetes = the config rendered for the new version;
   the health gate between nodes.
"""
