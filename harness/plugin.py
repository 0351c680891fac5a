"""pytest plugin of hydrogen-harness (fixtures are added as the layers land)."""
