"""`sla-oracle import`: samples from files (CSV, JSON lines, incidents) and from Prometheus."""
