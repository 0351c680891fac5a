"""Guards for input arriving over HTTP: body size, JSON nesting. Imports nothing of the harness."""
