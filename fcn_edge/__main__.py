import sys

from fcn_edge.cli.main import main

sys.exit(main())
