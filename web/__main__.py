"""``python -m web`` is the ``talkturo`` command."""

from web.cli import main

main()
