"""`python -m drills` — see drills/cli.py."""

from drills.cli import app

app(prog_name="drills")
