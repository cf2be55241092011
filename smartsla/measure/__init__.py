"""From samples to a period's values: the sample type and its one status table, and the period maths (slices,
gaps, maintenance, availability and latency in exact ppm/µs), shared by the oracle and the auditor."""
