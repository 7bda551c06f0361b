"""``hk8s image build|list|prune``: the Talos snapshots servers boot from, and the step of
``create`` and ``upgrade`` that makes sure a cluster's exist.

Phases (``ImageBuilds``, ``_ensure``):

1. targets: one per architecture the config's pools need, with the schematic resolved by the
   Image Factory (``_spec``, ``_schematic``);
2. observe by label: a snapshot ``available`` is done, one ``creating`` is waited for;
   leftovers of dead builds are removed;
3. build the missing ones in parallel, each under a claim with a heartbeat so that two runs
   build it once (``_claim``): temporary server -> rescue system -> SSH -> image on disk ->
   snapshot (``_build``, ``_commands``, ``_disk``, ``_errors``).

``_cluster`` is the one-call form for a cluster's config (``create``, ``upgrade``). Imports only
the shared machinery of ``hk8s.controller``.
"""
