"""Progress-bar settings shared by the long-running commands (kept free of torch: data workers import it)."""

from __future__ import annotations

import sys


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, every 30 s in a log file.

    A bar redrawn ten times a second into a log file (nohup, a cluster job) buries the result under
    carriage returns; twice a minute still shows that a long run is alive.
    """
    return 0.1 if sys.stderr.isatty() else 30.0
