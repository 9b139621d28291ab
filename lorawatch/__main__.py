"""`python -m lorawatch` is the `lorawatch` console script."""

import sys

from lorawatch.cli import main

sys.exit(main())
