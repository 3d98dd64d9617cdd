"""Errors a user causes and can fix: the command line prints their message alone.

A `UserError`'s message names the file or setting at fault and says what to do, so
`kedro run` (ssformer_repro/cli.py) and `python -m ssformer_repro.grid` print it as one
`Error: ...` line and exit with status 1, without a traceback (`kedro run --verbose` shows
it). Every other exception is a fault of the code and keeps its traceback. The module imports
nothing, so that every package can raise these.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user asked for or gave (settings, files, folders), not in the code.

    Subclasses mix it into the built-in class they are (`ValueError`, `FileExistsError`), so
    that code catching those keeps working.
    """
