"""Recipes: the commands that write run folders, each a ``setup → run → report`` script on top of
:mod:`sovtp.engine` (bench, ablate, spot, pad, robust, train, audit).  Nothing below this package
imports it; the CLI is a thin layer above it that parses options into a recipe's config.
"""
