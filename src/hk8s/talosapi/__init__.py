"""Code generated from protos/ by tools/protos.py (make protos). DO NOT EDIT.

hk8s' wire-compatible subset of the Talos API: ``common``, ``machine``, ``storage``,
``cluster``, ``cosi`` (resource State) and the ``google.rpc.Status`` Talos nests in replies.
"""
