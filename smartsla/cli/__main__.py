import sys

from smartsla.cli import main

sys.exit(main())
