import sys

from kinetic_rules.cli.app import main

sys.exit(main())
