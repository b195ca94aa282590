"""`python -m devstack COMMAND`: see `devstack.cli`."""

from devstack.cli import main

raise SystemExit(main())
