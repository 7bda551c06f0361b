"""The simulated Kubernetes API of a cluster: an HTTPS API server and its control plane.

Clients (the official ``kubernetes`` Python client, hk8s' ``providers.k8s``, kubectl) talk to
it as to kube-apiserver: discovery, get/list/watch with label and field selectors, create,
update (409 on a stale resourceVersion), JSON/merge/strategic merge patches, server-side apply
with managed fields and conflicts, delete with propagation, pod logs, and the Eviction API
honouring PodDisruptionBudgets. Behind it run simulated controllers, scheduler and kubelets,
on the injected ``Clock``: Deployments/ReplicaSets/DaemonSets/Jobs get pods, nodes turn Ready
once the Cilium agent runs on them, the Hetzner CCM initializes nodes, and Jobs that run
``helm upgrade --install`` install the charts in ``_charts.CATALOG``.

The world drives the machine side::

    kube = KubeAPI(k8s_ca.cert_pem, k8s_ca.key_pem, clock,
                   cloud_instance=lambda node: server_ids.get(node))
    await kube.serve("127.0.10.5", 6443)        # the LB's or first control plane's address
    kube.register_node("demo-cp-1", "10.0.1.1", "127.0.10.11", role="control-plane")
    kube.set_node_ready("demo-cp-1", False)     # rebooting: Ready=Unknown
    kube.remove_node("demo-w-3")                # server deleted
    kube.faults.failing_releases["cilium"] = "INSTALLATION FAILED: ..."
    kube.available = False                      # every request answers 503
    await kube.stop()

Objects persist across ``stop``/``serve``; a world that re-bootstraps makes a new ``KubeAPI``.
"""

from __future__ import annotations

from hk8s.sim.kube._charts import CATALOG, Chart
from hk8s.sim.kube._cluster import CloudInstance, Timings
from hk8s.sim.kube._helm import HelmFaults
from hk8s.sim.kube._kube import KubeAPI
from hk8s.sim.kube._status import KubeError

__all__ = ["CATALOG", "Chart", "CloudInstance", "HelmFaults", "KubeAPI", "KubeError", "Timings"]
