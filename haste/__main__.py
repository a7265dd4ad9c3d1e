"""``python -m haste``: see ``haste.cli``."""

from .cli import main

raise SystemExit(main())
