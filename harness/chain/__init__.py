"""The chain: `Chain` over one `Backend` (eth-tester or revm in memory, or JSON-RPC), the compiler, the contract bindings, the event feed and the ledger."""
