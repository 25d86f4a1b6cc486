"""``-v/--verbose`` for the command lines: the ``oanix`` loggers' records on stderr.

The package is quiet by default (a ``NullHandler`` on the ``oanix`` logger); ``-v`` shows
INFO records (wasm runs, trial phases, retries, reconnects, denials), ``-vv`` DEBUG ones
too (each shell command, a run's limits). Only the ``oanix`` loggers are configured, not
the root logger, so the libraries underneath stay quiet.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

__all__ = ["add_verbose_flag", "configure_logging"]


def add_verbose_flag(parser: argparse.ArgumentParser, **kwargs: Any) -> None:
    """Add ``-v/--verbose`` (a count) to ``parser``."""
    parser.add_argument("-v", "--verbose", action="count", dest="verbose",
                        help="log to stderr: -v progress (INFO), -vv details (DEBUG)",
                        **{"default": 0, **kwargs})


def configure_logging(verbosity: int) -> None:
    """Send the ``oanix`` loggers' records to stderr: 1 INFO, 2 or more DEBUG, 0 none."""
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%H:%M:%S"))
    logger = logging.getLogger("oanix")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
