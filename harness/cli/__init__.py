"""The `hydrogen-harness` command line."""
