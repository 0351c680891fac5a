"""The local developer sandbox: JSON-RPC, Relay, nodes, dashboard and DApp on loopback."""
