"""Runs documentation blocks, each in its own process forked from this one, which has imported torch and tim_zoo
(what every block imports, about 8 s of CPU each time in a fresh interpreter).

Protocol, one JSON line each way: the request `{"code", "cwd", "stdout", "stderr", "timeout"}`, the answer
`{"returncode"}` (the child's exit status; -9 when it ran past `timeout` seconds and was killed, with every process
it started: each child leads its own process group). A child runs the
code as a fresh `python -c` would: in `cwd`, as a new `__main__` module, with the current folder first on the path
and fresh import caches, its output (and that of any process it starts) in the two files."""
import importlib
import json
import os
import random
import signal
import sys
import time
import traceback
import types

import numpy

for _name in ('torch', 'tim_zoo'):                     # preloaded for the children
    importlib.import_module(_name)


def _child(job: dict) -> None:
    os.chdir(job['cwd'])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, job['stdout'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, job['stderr'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        target = os.open(path, flags)                   # also what the processes the block starts inherit
        os.dup2(target, fd)
        os.close(target)
    sys.stdin, sys.stdout, sys.stderr = open(0, closefd=False), sys.__stdout__, sys.__stderr__
    sys.argv = ['-c']
    sys.path[0] = ''                                    # `python -c`: the current folder first
    sys.path_importer_cache.clear()                     # the finder of '' resolved the parent's folder
    importlib.invalidate_caches()
    random.seed()                                       # fresh seeds, as a new interpreter has
    numpy.random.seed()
    main = types.ModuleType('__main__')
    main.__builtins__ = __builtins__
    sys.modules['__main__'] = main
    status = 0
    try:
        exec(compile(job['code'], '<string>', 'exec'), main.__dict__)  # noqa: S102 -- the docs' own blocks
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException as e:  # noqa: BLE001 -- reported as python -c reports it, from the block's first frame
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _run(job: dict) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)                            # its own group: a timeout kills what the block started too
            _child(job)
        except BaseException:  # noqa: BLE001 -- before the block ran (a missing folder): said on the runner's stderr
            traceback.print_exc()
        finally:
            os._exit(70)
    try:
        os.setpgid(pid, pid)                            # as the child does, whichever of the two runs first
    except OSError:                                     # the child has set it, or has already exited
        pass
    deadline = time.monotonic() + job['timeout']
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.05)


def main() -> None:
    answers = sys.stdout
    sys.stdout = sys.stderr                             # nothing else may write on the answer channel
    print(json.dumps(dict(ready=True)), file=answers, flush=True)
    for line in sys.stdin:
        print(json.dumps(dict(returncode=_run(json.loads(line)))), file=answers, flush=True)


if __name__ == '__main__':
    main()
