"""The benchmark suites: which clips exist and how each one is made (make_clip.py arguments)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI_DIR = ROOT / "benchmarks" / "synthetic" / "ci"
FULL_DIR = ROOT / "build" / "synthetic" / "full"

CI = {
    "jumps_front": ["--bvh", "01_01.bvh", "--start", "2.0", "--seconds", "4", "--camera", "front", "--seed", "0"],
}
FULL = {
    **CI,
    "jumps_side": ["--bvh", "01_01.bvh", "--start", "6.0", "--seconds", "5", "--camera", "side", "--seed", "1",
                   "--betas", "1.5,0.5,1"],
    "turn_diagonal": ["--bvh", "01_01.bvh", "--start", "12.0", "--seconds", "5", "--camera", "diagonal",
                      "--seed", "2", "--betas=-1,1,-1"],
    "climb_high": ["--bvh", "01_03.bvh", "--start", "3.0", "--seconds", "5", "--camera", "high", "--seed", "3",
                   "--betas", "0,-1,0,1"],
    "climb_front": ["--bvh", "01_03.bvh", "--start", "15.0", "--seconds", "5", "--camera", "front", "--seed", "4"],
}


def clips(suite: str) -> dict[str, list[str]]:
    """Name → make_clip arguments of a suite ("ci" or "full")."""
    return {"ci": CI, "full": FULL}[suite]


def clip_dir(suite: str) -> Path:
    """Where a suite's clips live."""
    return CI_DIR if suite == "ci" else FULL_DIR
