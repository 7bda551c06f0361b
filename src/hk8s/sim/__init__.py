"""The simulated Hetzner Cloud + Talos + Kubernetes world (design.md section 6)."""
