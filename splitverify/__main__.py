"""``python -m splitverify`` is the ``splitverify`` command."""

from .cli import app

app(prog_name="splitverify")
