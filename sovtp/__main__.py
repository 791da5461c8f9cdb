"""`python -m sovtp`."""

import sys

from sovtp.cli import main

sys.exit(main())
