"""``python -m haste``: see ``haste.cli``."""

from .repro.cli import main

raise SystemExit(main())
