"""`python -m graphscope` is the `graphscope` command."""

from graphscope.cli import run

run()
