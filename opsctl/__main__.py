"""`python -m opsctl`."""

from opsctl.main import app

app(prog_name="opsctl")
