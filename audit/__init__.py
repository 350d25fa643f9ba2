"""The audit trail: an append-only, hash-chained log in PostgreSQL, its recorder (what changes in the
Kubernetes API) and its verification."""
