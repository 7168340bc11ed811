import sys

from grammarlab.cli import main

sys.exit(main())
