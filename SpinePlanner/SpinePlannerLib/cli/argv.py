"""Normalise ``spineplan`` command lines before argparse sees them.

* Values that start with a minus sign (``--tumor-seed -3,-11,20``: a point right of the midline)
  are joined to their option (``--tumor-seed=-3,-11,20``); argparse would otherwise read them as
  an unknown option and fail with "expected one argument".
* Global flags (``--quiet``) are accepted anywhere on the line: they are moved in front of the
  subcommand.
"""

from __future__ import annotations

import re

NEGATIVE_VALUE_OPTIONS = ("--tumor-seed", "--level-anchor")
"""Options whose value may begin with ``-`` (coordinates in RAS mm)."""

GLOBAL_FLAGS = ("--quiet",)
"""Flags without a value that belong to ``spineplan`` itself, not to a subcommand."""

_NUMBER_START = re.compile(r"^-\s*(\d|\.\d|inf|nan)", re.IGNORECASE)


def normalise_argv(argv: list[str]) -> list[str]:
    """Return ``argv`` with negative option values joined and global flags moved to the front.

    Nothing after a ``--`` separator is changed.
    """
    argv = list(argv)
    head, tail = argv, []
    if "--" in argv:
        cut = argv.index("--")
        head, tail = argv[:cut], argv[cut:]
    out: list[str] = []
    flags: list[str] = []
    i = 0
    while i < len(head):
        tok = head[i]
        if tok in GLOBAL_FLAGS:
            flags.append(tok)
        elif tok in NEGATIVE_VALUE_OPTIONS and i + 1 < len(head) and _NUMBER_START.match(head[i + 1]):
            out.append(f"{tok}={head[i + 1]}")
            i += 1
        else:
            out.append(tok)
        i += 1
    return flags + out + tail
