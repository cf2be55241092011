"""The oracle room by room: probes against local targets, the store (crashes included), importers with a real
Prometheus, the config and key, the report server, signing and submission."""
