"""Run a command, then write its wall time and its own peak RSS as JSON: `spawn.py RESULT_FILE ARGV...`.

Why a separate launcher: on Linux the peak RSS that wait4 reports for a child includes the address space
that its exec replaced, which is a copy of the parent's. The benchmark process holds hundreds of MiB at
times (a whole document in memory, a million generated students), so every command it measures would
look that large. Forked from this small process instead, a command reports only its own memory.
Only the standard library's os, sys, json and time: the launcher starts in milliseconds (run it with -S).
"""

import json
import os
import sys
import time


def main() -> int:
    result, argv = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: become the command
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w", encoding="ascii") as out:
        json.dump(
            {"wall": time.perf_counter() - started, "max_rss_kib": usage.ru_maxrss, "returncode": code}, out
        )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
