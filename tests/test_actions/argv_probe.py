"""A stand-in program for the ``command`` handler: appends its argv (JSON) to a file.

Usage: ``argv_probe.py OUT [HOLD] ARGS...``: after writing, waits while the file HOLD exists
(at most 60 s), so a test can kill the executor while the handler runs.
"""

import json
import os
import sys
import time


def main() -> None:
    out, hold = sys.argv[1], sys.argv[2]
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(sys.argv[3:]) + "\n")
        f.flush()
        os.fsync(f.fileno())
    deadline = time.monotonic() + 60
    while os.path.exists(hold) and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    main()
