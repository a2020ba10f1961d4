"""`python -m spell.torchrun ARGS`: torchrun (torch.distributed.run) for a self-play run of several
processes, made to pass the pause signal on.

The worker pauses a run by sending SIGUSR1 to the training process's group. Each rank of `spell
train` handles it (finish the step, checkpoint, exit 0), but torchrun starts its ranks in sessions of
their own, so the signal reaches only its agent, and Python's default for SIGUSR1 is to die: the pause
would read as a crash and the ranks would never hear of it. Here the agent forwards SIGUSR1 to its
child processes (the ranks) instead. SIGTERM (cancel) is torchrun's own business: it stops its ranks.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is `parent` (Linux /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # pid (comm) state ppid ...: comm may hold spaces or parentheses, so split after the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == parent:
            children.append(int(entry.name))
    return children


def forward_to_children(signum, frame) -> None:
    for pid in child_pids(os.getpid()):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def main() -> None:
    signal.signal(signal.SIGUSR1, forward_to_children)
    sys.argv = ["torchrun", *sys.argv[1:]]
    runpy.run_module("torch.distributed.run", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
