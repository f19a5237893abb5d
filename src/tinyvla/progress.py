"""How long-running commands report progress (kept free of torch: data workers import it).

On a terminal a live tqdm bar; in a log file (nohup, a cluster job) a bar redrawn ten times a second
buries the result under carriage returns, so there the commands report rarely or in plain lines.
"""

from __future__ import annotations

import sys


def progress_to_terminal() -> bool:
    """True when progress output (stderr) goes to a terminal rather than a file or pipe."""
    return sys.stderr.isatty()


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, every 30 s in a log file
    (twice a minute still shows that a long run is alive)."""
    return 0.1 if progress_to_terminal() else 30.0
