"""``python -m fastquant``: the command line (:mod:`fastquant.cli`)."""

from .cli import main

raise SystemExit(main())
