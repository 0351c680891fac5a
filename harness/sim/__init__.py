"""Simulation: the in-memory `Network` stepping the application, the nodes and the Relay, and its reports."""
