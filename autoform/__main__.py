import os
import signal

# a Ctrl-C while the command line loads (before it handles Ctrl-C itself): leave with the documented code (1)
signal.signal(signal.SIGINT, lambda signum, frame: os._exit(1))

from autoform.cli import main  # noqa: E402

main()
