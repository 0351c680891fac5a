"""The in-memory chain served as a JSON-RPC node: methods, transaction pool and miner, filters, WebSocket."""
