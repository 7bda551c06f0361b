"""A simulated Hetzner Cloud API (``/v1``) for tests, benchmarks and ``hk8s sim up``.

It serves the resources and actions hk8s uses with the real JSON shapes (openapi.json),
status codes and error envelope, label selectors, pagination, name uniqueness, locking,
action lifecycles on a scaled clock, the rate limit and its headers, Bearer auth, and seeded
faults. Start it::

    async with HcloudSim.start(speed=50, faults=FaultSpec(seed=1)) as sim:
        client = hcloud.Client(token=sim.token, api_endpoint=sim.endpoint)

    with run_in_thread(speed=50) as threaded:        # synchronous tests, CLI e2e tests
        env = threaded.sim.env()   # HCLOUD_ENDPOINT, HCLOUD_TOKEN, HK8S_TIME_SCALE

``HcloudSim(...)`` also takes ``clock`` (injectable), ``durations`` (``Durations``, simulated
seconds per action), ``token``, ``rate_limit`` (bucket size), ``health_probe`` (load balancer
target health) and ``server_ips``/``lb_ips`` (the loopback ranges public IPs come from).

Hooks for the rest of the simulated world (Talos nodes, rescue SSH, Kubernetes)
---------------------------------------------------------------------------------
Compose in the same event loop: ``sim.add_task(coro)`` runs another part alongside and
cancels it on close; ``sim.on_close(async_fn)`` stops your servers first; ``sim.clock`` is
the shared clock; ``sim.state`` is an ``HcloudState``.

``sim.state.subscribe(listener)`` calls ``listener(event: SimEvent)`` (sync, or a coroutine
run as a task) on the loop for:

==========================  ============================================================
``server_created``          ``event.server``, ``event.image`` (boot image; copy
                            ``image.metadata`` to know what the disk holds)
``server_booted``           the server is ``running``; ``server.in_rescue`` says whether it
                            booted into the rescue system (rescue is then consumed:
                            ``rescue_enabled`` is false again, as the real API documents)
``server_powered_off``      poweroff / shutdown completed (stop serving on its IP)
``server_rebooted``         reboot: stop serving; ``server_booted`` follows
``server_reset``            hard reset: stop serving; ``server_booted`` follows
``server_deleted``          the server is gone
``rescue_enabled``          ``details["ssh_keys"]`` (``SSHKey`` list), ``details["root_password"]``
``rescue_disabled``
``image_create_requested``  ``event.server``, ``event.image`` (status ``creating``): write the
                            disk content into ``image.metadata`` now
``image_created``           the snapshot is ``available``
``server_rebuilt``          ``event.image`` is the server's new disk
``server_attached``         joined ``details["network"]``
==========================  ============================================================

Public fields of the records: ``Server.public_ipv4`` (a distinct 127.1.x.y, bindable without
root), ``.private_net`` ({network id: ip}), ``.status``, ``.rescue_enabled``, ``.in_rescue``,
``.rescue_ssh_key_ids``, ``.rescue_password`` (what enable_rescue asked for), ``.image``,
``.labels``, ``.user_data``, ``.ssh_key_ids``, ``.metadata`` (free for other parts);
``Image.metadata``, ``.labels``, ``.architecture``, ``.created_from``;
``LoadBalancer.public_ipv4`` (127.2.x.y; its services forward TCP to healthy targets);
``Volume.server_id``, ``.labels`` (``sim.state.volumes``: what a CSI driver would make).
``state.start_action(...)`` runs a timed action; ``sim.load_balancers.probe`` decides target
health (default: TCP connect to the target's public IPv4).

Sim-only HTTP controls (outside ``/v1``, no auth): ``GET /_sim/stats[?log=1]``,
``POST /_sim/reset-stats``, ``GET|POST /_sim/faults`` (a ``FaultSpec`` as JSON),
``POST /_sim/rate-limit {"remaining": n}``, ``GET /_sim/servers``.

``RateLimit-Reset`` is a wall-clock UNIX time; a client on a clock at speed N converts
``reset - time.time()`` wall seconds to N times as many clock seconds.
"""

from __future__ import annotations

from hk8s.sim.hcloud._app import HcloudApi, Observer
from hk8s.sim.hcloud._catalog import LB_TYPES, LOCATIONS, SERVER_TYPES
from hk8s.sim.hcloud._errors import ApiError
from hk8s.sim.hcloud._faults import ActionFault, ErrorFault, FaultInjector, FaultSpec, LatencyFault
from hk8s.sim.hcloud._lb import LoadBalancerWorld, Probe
from hk8s.sim.hcloud._model import (
    Action,
    Firewall,
    Image,
    LoadBalancer,
    Network,
    PlacementGroup,
    PrimaryIP,
    Server,
    SSHKey,
    Volume,
)
from hk8s.sim.hcloud._runner import HcloudSim, ThreadedSim, run_in_thread
from hk8s.sim.hcloud._state import ActionFailure, Durations, HcloudState, Listener, SimEvent
from hk8s.sim.hcloud._stats import RequestRecord, Stats

__all__ = [
    "LB_TYPES",
    "LOCATIONS",
    "SERVER_TYPES",
    "Action",
    "ActionFailure",
    "ActionFault",
    "ApiError",
    "Durations",
    "ErrorFault",
    "FaultInjector",
    "FaultSpec",
    "Firewall",
    "HcloudApi",
    "HcloudSim",
    "HcloudState",
    "Image",
    "LatencyFault",
    "Listener",
    "LoadBalancer",
    "LoadBalancerWorld",
    "Network",
    "Observer",
    "PlacementGroup",
    "PrimaryIP",
    "Probe",
    "RequestRecord",
    "SSHKey",
    "Server",
    "SimEvent",
    "Stats",
    "ThreadedSim",
    "Volume",
    "run_in_thread",
]
