"""Examples of producers built on the contract (clearly examples: read, copy, adapt)."""
