"""``python -m fastquant``: the command line (:mod:`fastquant.cli`).

After a run whose jobs all ran in this process, or in fastquant's own worker processes that have
all exited, the process ends with ``os._exit`` once its output is flushed: the interpreter's usual
teardown (freeing every module, Numba's and LLVM's objects) takes about a tenth of a second, as
long as all of the start-up fastquant itself adds, and has nothing left to do (the files are
written and closed, and no worker process runs).  A batch would pay it after its last file, on
one core while the others idle.
"""

import os
import sys

from . import cli

code = cli.main()
if cli.finished_in_process:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a reader that went away: the exit code still stands
        pass
    os._exit(code)
raise SystemExit(code)
