"""`python -m ssformer_repro.grid`: see ssformer_repro/grid/cli.py."""

import sys

from ssformer_repro.grid.cli import main

sys.exit(main())
