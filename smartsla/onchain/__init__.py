"""The agreement contracts as Python sees them: typed on-chain terms and period records, the ABI codec, the
EIP-712 messages (reports, termination), the client for the factory and an agreement, and the history read back
from logs."""
