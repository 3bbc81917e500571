"""`python -m tim_zoo.train ...`: the same as `tim-zoo train ...`."""
import sys

from ..cli import main

if __name__ == '__main__':
    sys.exit(main(['train'] + sys.argv[1:]))
