"""hydrogen-harness: test and simulate applications of the Crynux Hydrogen Network."""

__version__ = "0.1.0"
