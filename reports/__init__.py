"""The reports the business asks for — the production analysis, compliance evidence and cost per symbol —
built from Prometheus, PostgreSQL and the Kubernetes API, rendered as Markdown, HTML (with PNG charts)
and JSON."""
