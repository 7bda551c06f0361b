"""The simulated Kubernetes API of a cluster: an HTTPS API server and its control plane.

Clients (the official ``kubernetes`` Python client, hk8s' ``providers.k8s``) talk to it as to
kube-apiserver, in the real JSON shapes (``metadata.uid``, ``resourceVersion``,
``generation``, ``managedFields``; ``Status`` errors with upstream reasons and messages):

- discovery (``/api``, ``/apis``, ``/api/v1``, ``/apis/<group>/<version>``), ``/version``,
  ``/healthz``, ``/livez``, ``/readyz`` (these four also anonymously);
- namespaces, nodes, pods (``log``, ``eviction``), services, secrets, configmaps,
  serviceaccounts, events, PVCs/PVs, ``apps/v1`` deployments/daemonsets/replicasets,
  ``batch/v1`` jobs, ``policy/v1`` PDBs, RBAC, ``coordination.k8s.io`` leases, storageclasses;
- get, list (``labelSelector``, ``fieldSelector`` with each kind's supported fields, ``limit``/
  ``continue``), watch (replay from a resourceVersion, 410 Expired past ``watch_history``,
  ``timeoutSeconds`` in clock seconds), create, update (409 on a stale resourceVersion), JSON
  patch, merge patch, strategic merge patch, server-side apply (``fieldManager``, ``force``,
  conflicts listed like upstream), delete (propagation; Jobs orphan by default as upstream),
  ``dryRun=All``, the Eviction API honouring PodDisruptionBudgets (429).

Authentication: a client certificate chaining to the cluster's Kubernetes CA (verified in the
TLS handshake; a certificate from another CA fails the handshake). Without one a request is
anonymous and gets ``401 Unauthorized``, except the health and version endpoints.

Behind the API run a scheduler, kubelets and controllers on the injected ``Clock``:
Deployments -> ReplicaSets -> Pods, DaemonSets (rolling updates), Jobs (``backoffLimit``,
``ttlSecondsAfterFinished``), PDB status, garbage collection, namespace finalization. Nodes
register NotReady and turn Ready when the ``kube-system/cilium`` DaemonSet's pod runs on them;
the hcloud CCM Deployment, once available, sets ``providerID`` and removes the
``node.cloudprovider.kubernetes.io/uninitialized`` taint. Jobs whose container runs ``helm
upgrade --install`` (the addon contract) install the charts of ``CATALOG`` and log like helm.

The world drives the machine side::

    kube = KubeAPI(k8s_ca.cert_pem, k8s_ca.key_pem, clock,
                   cloud_instance=lambda node: server_ids.get(node))   # node -> server id
    await kube.serve("127.0.10.5", 6443)        # any number of addresses; port 0 = ephemeral
    kube.register_node("demo-cp-1", "10.0.1.1", "127.0.10.11", role="control-plane",
                       control_plane_taint=True, kubelet_version="1.34.1")
    kube.set_node_ready("demo-cp-1", False)     # kubelet stopped (reboot): Ready=Unknown
    kube.remove_node("demo-w-3")                # machine gone: Node (and its pods) deleted
    kube.faults.failing_releases["cilium"] = "INSTALLATION FAILED: ..."   # helm Job fails
    kube.faults.slow_releases["cilium"] = 120.0 # helm Job runs 120 clock seconds longer
    kube.faults.unknown_versions.add(("cilium", "1.99.0"))                # version not in repo
    kube.available = False                      # every request answers 503 (LB sees it down)
    await kube.stop()                           # objects are kept; serve() again resumes

``Timings`` sets how long pods take to start and Jobs to run (clock seconds).
CronJobs fire on the simulated clock (``_cronjobs``); Talos' ServiceAccount CRD answers with a
talosconfig Secret while ``cluster.talos_access`` grants it; Job containers whose image the
world registers in ``cluster.programs`` (talos-backup) run that program.
Not simulated: kube-proxy/Service routing, Events and node Leases (served, never written),
StatefulSets, taint-based eviction from unreachable nodes, pod anti-affinity, RBAC
authorization (every authenticated user is allowed everything, like ``system:masters``).
"""

from __future__ import annotations

from hk8s.sim.kube._charts import CATALOG, Chart
from hk8s.sim.kube._cluster import CloudInstance, PodRun, TalosAccess, Timings
from hk8s.sim.kube._helm import HelmFaults
from hk8s.sim.kube._kube import KubeAPI
from hk8s.sim.kube._status import KubeError

__all__ = [
    "CATALOG",
    "Chart",
    "CloudInstance",
    "HelmFaults",
    "KubeAPI",
    "KubeError",
    "PodRun",
    "TalosAccess",
    "Timings",
]
