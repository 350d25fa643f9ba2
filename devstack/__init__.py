"""What only serves development and the embedded default: the emulated Kubernetes API, the local runtime
fleet (pods as real processes), the Prometheus and feed launchers, and the demo. Nothing in the product
imports it (an import-linter contract says so)."""
