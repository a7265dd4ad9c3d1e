"""``python -m haste``: see ``haste.repro.cli``."""

from .repro.cli import main

raise SystemExit(main())
