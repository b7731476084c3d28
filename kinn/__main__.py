import sys

from kinn.cli import main

sys.exit(main())
