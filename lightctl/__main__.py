import sys

from lightctl.cli import main

sys.exit(main())
