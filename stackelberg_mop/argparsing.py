"""The command line's argument parser: argparse whose errors are one line naming the flag (exit 2),
shared by the ``stackelberg-mop`` command and the training scripts, and the flags commands share."""

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


def count(text: str) -> int:
    """An argparse type: a whole number >= 1 (days, workers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def backend_flags(parser: argparse.ArgumentParser) -> None:
    """--backend, --address and --workers: where a command's tasks run (`runner.parallel.execute`;
    docs/benchmark.md, "On a Ray cluster")."""
    parser.add_argument("--backend", default="local", choices=("local", "serial", "ray"),
                        help="local processes, this process, or Ray (the cluster at --address, else a local instance)")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="--backend ray: join the running Ray cluster whose head is at HOST:PORT (also "
                             "ray://HOST:PORT or 'auto'; default: RAY_ADDRESS, else start a local Ray instance)")
    parser.add_argument("--workers", type=count, default=None,
                        help="local processes, or the local Ray instance's CPUs (default: all cores); on a joined "
                             "Ray cluster, at most this many tasks at once (default: as many as it runs)")
