"""What the Hydrogen Network fixes: constants, records, events, revert reasons, request signing, task arguments, the perceptual hash. Imports nothing of the harness."""
