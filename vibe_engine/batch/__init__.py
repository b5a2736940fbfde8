"""``python -m vibe_engine batch``: many videos → motion files (and exports), resumable, on Ray.

::

    python -m vibe_engine batch INPUT... --out DIR [--ray auto|local|ADDRESS] [--workers N]
        [--gpus-per-task F] [--formats motion,fbx,bvh,glb] [--resume] [-- RUN OPTIONS]

INPUT: videos, folders, globs, CSV/JSONL manifests (``inputs.py``). Options after ``--`` are
``run`` options applied to every clip (a manifest row may override them). Without ``--ray`` (or
when Ray is not installed and ``--ray auto``) the clips run one after another in this process.
Outputs: ``DIR/<stem>.motion.npz`` per clip, ``DIR/exports/<stem>/`` when export formats are
asked for, the run manifest ``DIR/batch.jsonl`` (``ledger.py``) and the final report
``DIR/batch_report.json`` (also printed on stdout). docs/batch.md describes it all.

Exit codes: 0 every clip done, 1 at least one failed, 2 usage/inputs (nothing run), 3 cancelled.
"""
from __future__ import annotations

from vibe_engine.batch.main import batch_main

__all__ = ["batch_main"]
