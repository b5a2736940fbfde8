"""Shared pytest configuration. Imports nothing heavy (no bpy, no torch) at module level."""
import os
import signal

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# A shell without job control starts background jobs with SIGINT ignored, and an ignored signal
# stays ignored in every child: the engine under test would never see the Ctrl-C that the
# cancel tests send (tests/robustness "sigint", tests/batch resume after Ctrl-C). A handled
# signal is reset to the default in an exec'd child, so this gives the children Python's usual
# KeyboardInterrupt whatever started the suite.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
