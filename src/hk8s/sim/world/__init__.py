"""The whole simulated world in one asyncio process: Hetzner, factory, rescue, Talos, Kubernetes.

One clock (``speed``) and one seeded fault spec drive every part. The Hetzner API's events
(``hk8s.sim.hcloud`` package docstring) move the rest: a server that boots into rescue gets an
SSH server at ``<ip>:10022``; a server whose disk holds a Talos image boots a Talos node at
``<ip>:50000``; ``create_image`` snapshots the disk; control planes bring up the cluster's
Kubernetes API at ``<cp-ip>:6443`` (and so behind the cluster's load balancer). An
S3-compatible object store (``hk8s.sim.s3``, bucket ``hk8s-backups``) receives the backups
talos-backup's CronJob takes in a cluster with ``backup:``.

>>> async with World.start(speed=50) as world:
...     env = world.env()          # HCLOUD_ENDPOINT, HCLOUD_TOKEN, HK8S_TIME_SCALE, ...
>>> with World.start_in_thread(speed=50) as threaded:     # synchronous tests
...     subprocess.run(["hk8s", "image", "build"], env={**os.environ, **threaded.env})
"""

from __future__ import annotations

from hk8s.sim.world._faults import WorldFaults
from hk8s.sim.world._world import (
    IMAGE_FACTORY_ENV,
    MY_IP_ENV,
    S3_BUCKET_ENV,
    S3_ENDPOINT_ENV,
    ThreadedWorld,
    World,
    run_world,
)

__all__ = [
    "IMAGE_FACTORY_ENV",
    "MY_IP_ENV",
    "S3_BUCKET_ENV",
    "S3_ENDPOINT_ENV",
    "ThreadedWorld",
    "World",
    "WorldFaults",
    "run_world",
]
