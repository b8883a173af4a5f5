"""``python tests/det_run.py <cvagents args>``: the CLI with measured durations made deterministic.

Crash tests compare a crashed-and-resumed run with a run that never crashed, file for file.
Everything else in a run is deterministic on the manual clock with the offline provider; the
only differences left are wall-clock measurements (meeting and tool durations, per-query
latencies), so this launcher pins ``time.perf_counter`` / ``perf_counter_ns`` before anything
is imported. The schedule, the journal and the mirror use other clocks and are unaffected.

``python tests/det_run.py --serve`` is a fork server for the crash tests: it imports torch and
cvagents once (no torch op runs in it), then for each JSON line ``{"args", "env", "out"}`` on
stdin forks a child that runs the CLI (a real process: the crash points SIGKILL it) and answers
``{"rc": <exit code, or -signal>}``. Saves a torch import (seconds) per run.
"""

import json
import os
import sys
import time

time.perf_counter = lambda: 0.0
time.perf_counter_ns = lambda: 0

from cvagents.cli import main  # noqa: E402


def serve() -> None:
    import torch  # noqa: F401  - imported, never used here: the children start warm

    import cvagents.execution.tools  # noqa: F401
    import cvagents.models  # noqa: F401
    from cvagents.durability import crashpoints

    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.clear()
                os.environ.update(req["env"])
                crashpoints.reset()
                out = os.open(req["out"] + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                err = os.open(req["out"] + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, 1)
                os.dup2(err, 2)
                code = main(req["args"])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"rc": rc}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(main(sys.argv[1:]))
