"""Reaching a chain: connecting and transacting (embedded, anvil, any RPC URL), revert decoding, the local anvil
node, accounts and keystores, recorded deployments, brownie-config.yaml, and the contract build."""
