"""`python -m switchboard_dev` runs the `switchboard` command line."""

import sys

from switchboard_dev.cli import main

sys.exit(main())
