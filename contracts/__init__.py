"""Reference Vyper sources of the Hydrogen Network contracts (CNX, Node, Task)."""
