import sys

from cvagents.cli import main

sys.exit(main())
