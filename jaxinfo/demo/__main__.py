"""``python -m jaxinfo.demo``: runs the command line, jaxinfo.demo.main (nothing else here)."""

import sys

from jaxinfo.demo._cli import main

if __name__ == "__main__":
    sys.exit(main())
