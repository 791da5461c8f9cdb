"""`python -m sovtp.cli`."""

import sys

from sovtp.cli import main

sys.exit(main())
