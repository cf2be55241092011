"""Local services and networks for the demo, the tests and the benchmarks: targets that go up and down on a
schedule, and a local net of anvil, contracts and oracle processes. Never used by the oracle itself."""
