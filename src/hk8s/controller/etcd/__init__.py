"""``hk8s etcd snapshot|restore``: a verified copy of etcd, and disaster recovery from one.

- snapshot (``_snapshot``): pick a member that sees a leader and reports no error -> stream
  its database to ``<name>.part`` -> verify the trailer and structure -> rename into place;
- restore (``_restore``): verify the snapshot -> refuse while etcd has quorum (unless forced)
  -> wipe EPHEMERAL on every control plane -> bootstrap one from the snapshot -> the others
  join -> the health gate.
"""
