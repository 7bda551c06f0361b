"""``hk8s status``: the cluster as it is, on one screen, read-only, also when parts are down.

One phase, observe (``_observe``): each source asked on its own (Hetzner, each node's Talos
API, etcd, the Kubernetes API and Helm's release records, the plan ``create`` would carry
out); a source that fails is a line in ``problems``, not the end of the command.
"""
