"""Benchmarks of hydrogen-harness (`make bench`) and the mutation check (`make mutation`)."""
