"""``hk8s destroy`` (and ``hk8s plan --destroy``): everything a cluster owns, deleted in order.

Phases (``Destroyer``, ``_command``):

1. observe what the cluster owns: a fixed number of label-selector list calls, ownership
   decided by labels only (``hk8s.controller._inventory``);
2. plan: one delete operation per resource, CCM load balancers first, the network last
   (``_plan``, pure); a plan holding a delete-protected resource is refused as a whole;
3. in-cluster cleanup: the cluster deletes the load balancers and volumes it made itself
   (``_k8s``);
4. apply the plan that was shown: handlers re-check each resource, then delete (``_apply``);
5. verify: whatever still carries the cluster's labels gets one more pass, then is an error;
   local files (kubeconfig, talosconfig, secrets) go last.
"""
