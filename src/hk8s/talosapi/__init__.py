"""Code generated from protos/ by tools/protos.py (make protos). DO NOT EDIT.

hk8s' wire-compatible subset of the Talos API: ``common``, ``machine``, ``storage``,
``cluster``, ``cosi`` (resource State) and the ``google.rpc.Status`` Talos nests in replies.

Generated with grpcio-tools 1.85.1, mypy-protobuf 5.1.0, grpclib 0.4.9.
"""
