import sys

from stratbench.cli import main

sys.exit(main())
