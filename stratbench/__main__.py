import sys

from stratbench.commands import main

sys.exit(main())
