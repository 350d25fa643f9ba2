"""The tradeops Pulumi program: namespaces, CRD, operator, datastores, Prometheus stack, dashboards,
backups and NetworkPolicies (see infra/README.md)."""
