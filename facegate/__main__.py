"""Allow ``python -m facegate``."""

from facegate.cli.main import main

raise SystemExit(main())
