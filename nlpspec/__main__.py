"""`python -m nlpspec`: the nlpspec command (nlpspec/cli.py)."""
import sys

from nlpspec.cli import main

sys.exit(main())
