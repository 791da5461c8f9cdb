"""The ``sovtp`` command line (a package: one module per command group, shared options)."""

from sovtp.cli.app import app, main

__all__ = ["app", "main"]
