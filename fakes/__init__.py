"""Stand-ins for the network's off-chain parties: the Relay, GPU nodes, Stable Diffusion."""
