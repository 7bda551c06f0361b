"""``hk8s doctor``: read-only checks to run before an upgrade or when something is off.

Phases (``diagnose``, ``_command``): observe each source on its own (the Hetzner project by
label, each node's Talos API, the Kubernetes API, the backup CronJob, the local files), then
judge what was observed with pure checks that name the subject and the fix (``_checks``). A
source that cannot be reached is a problem of the checks that needed it; the rest still run.
"""
