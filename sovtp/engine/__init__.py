"""The run engine: what every command that writes a run folder shares.

A run folder is held by one process (a lock released and removed at exit), belongs to one kind
of recipe (``run.json``), is resumed under one rule (the identity a resume must match, each
change named), and is written by appends that are flushed row by row and files replaced by one
atomic helper.  The streaming machinery (:mod:`.runner`: samples → prepared queries → systems →
rows, bounded queues, a worker pool) and the exit-code rule (:mod:`.outcome`) live here too.

Floors: the engine imports the domain packages (media, annotate, prompting, backends, scoring,
baselines' systems) and never a recipe; :mod:`sovtp.recipes` sits on top of it and the CLI on
top of the recipes.
"""
