"""``python -m authx``: the ``authx`` command (see :mod:`authx.cli`)."""

from authx.cli import main

main(prog_name="authx")
