"""The command line's argument parser: argparse whose errors are one line naming the flag (exit 2),
shared by the ``stackelberg-mop`` command and the training scripts."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``stackelberg-mop: error: --limit: must be >= 1, got -1`` (exit 2),
    and no abbreviated flags (``--learning-rat`` is a typo, not ``--learning-rate``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")
