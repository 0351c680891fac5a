"""The fake Relay: a service core and the HTTP app that serves it."""
