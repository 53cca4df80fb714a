"""``python -m rathaus``: the command line."""

from rathaus.cli import main

main()
