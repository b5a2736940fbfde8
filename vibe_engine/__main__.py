"""``python -m vibe_engine …``: see vibe_engine.cli."""
import sys

from vibe_engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
