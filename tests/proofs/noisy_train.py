"""`python -m spell train`, for real, in a process that also prints garbage: while the training
loop runs, a thread writes lines that are not events into OUT/events.jsonl (each line one
O_APPEND write, as a stray library print into the file would be) and junk on stdout / stderr.
Used as SPELL_TRAIN_COMMAND by test_fault_garbage_lines.py."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

GARBAGE = [
    b"this is not json",
    b'{"no": "type"}',
    b'{"type": "metrics", "payload": [1, 2]}',
    b"\xff\xfe binary \x00 junk \x1b[31m",
    b"[1, 2, 3]",
    b'{"type": "nonsense", "payload": {}}',
    b"NaN",
    b'{"type": "sample", "payload": {"question": "unterminated',
]


def spray(events: Path) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not (events.exists() and events.read_bytes().count(b"\n") >= 2):
        time.sleep(0.05)
    for burst in range(2):
        for line in GARBAGE:
            fd = os.open(events, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)
            sys.stdout.buffer.write(b"garbage on stdout: " + line + b"\n")
            sys.stdout.flush()
            sys.stderr.write("\x00\x07 garbage on stderr \ufffd\n")
        time.sleep(3)


def main() -> int:
    argv = sys.argv[1:]
    out = Path(argv[argv.index("--out") + 1])
    threading.Thread(target=spray, args=(out / "events.jsonl",), daemon=True).start()
    from spell.cli import main as spell_main

    return spell_main(["train", *argv])


if __name__ == "__main__":
    sys.exit(main())
