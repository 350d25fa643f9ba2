"""`python -m trading_runtime`."""

import sys

from trading_runtime.main import main

sys.exit(main())
