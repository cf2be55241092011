"""The contracts through the client on the real EVM, embedded and anvil: every path, every attack, and the
properties (conservation of funds, each period settled once with the value its reports imply)."""
