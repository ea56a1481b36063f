"""``python -m optimize``: see :mod:`optimize.cli`.

A signal that arrives while the command line is still importing (before :func:`optimize.cli.main`
installs its handlers) stops it the same way: one line (none from a worker started by ``run``),
exit ``128 + signum``, no traceback.
"""

import signal
import sys

from base.errors import SignalReceived


def _early(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SignalReceived(signum)


for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, _early)
try:
    # `run` starts its workers with both signals blocked, so that one forwarded while a worker
    # starts waits for the handler above: deliver it now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    from optimize.cli import main

    code = main()
except SignalReceived as exc:
    if "--managed" not in sys.argv:
        print(exc, file=sys.stderr)
    code = exc.as_error().exit_code
sys.exit(code)
