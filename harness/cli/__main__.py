"""`python -m hydrogen_harness.cli`: the command line."""

from hydrogen_harness.cli.main import main

raise SystemExit(main())
