import sys

from lightctl.cli.main import main

sys.exit(main())
