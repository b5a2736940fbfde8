"""How well the post-processed characters overlay the footage: 2D error of each person's final
joints against the detector's image landmarks and against the raw fit's own 2D joints.

    python benchmarks/overlay.py MOTION_FILE [MOTION_FILE ...] [--depth-fusion on|off|both]

Works on a real clip (no ground truth): the BlazePose backend keeps the landmarks it saw
(``landmarks_image``). The file's raw output is post-processed again with the current code
(``benchmarks.accuracy.repostprocess``), with the root depth fusion
(``vibe_engine.postprocess.run.DEPTH_FUSION``; off: the body-size depth prior alone) on, off or
both, and the final 33 markers
(``joints2d``) are compared, on the 12 limb landmarks (shoulders to ankles), with the landmarks
(the image evidence) and with ``joints2d_raw`` (the raw fit: any change from it counts). Mean
pixels per person.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import LIMB_LANDMARKS as LIMB_PAIRS, repostprocess  # noqa: E402
from vibe_blender.core import motion_file as mf  # noqa: E402

#: BlazePose landmarks of the limbs (shoulders, elbows, wrists, hips, knees, ankles): the accuracy
#: benchmark's 12 limb joints.
LIMB_LANDMARKS = list(LIMB_PAIRS)


def overlay_errors(motion: mf.Motion) -> dict[int, tuple[float, float]]:
    """{track id: (mean px vs the landmarks, mean px vs the raw fit)} of the limb landmarks."""
    out = {}
    for track in motion.tracks:
        landmarks = track.extra.get("landmarks_image")
        if landmarks is None:
            continue
        final = np.asarray(track.joints2d, np.float64)[:, LIMB_LANDMARKS]
        raw = np.asarray(track.extra["joints2d_raw"], np.float64)[:, LIMB_LANDMARKS]
        seen = np.asarray(landmarks, np.float64)[:, LIMB_LANDMARKS, :2]
        out[int(track.id)] = (float(np.nanmean(np.linalg.norm(final - seen, axis=-1))),
                              float(np.mean(np.linalg.norm(final - raw, axis=-1))))
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: one line per file, setting and person."""
    import vibe_engine.postprocess.run as post

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--depth-fusion", choices=("on", "off", "both"), default="both")
    args = p.parse_args(argv)
    settings = {"on": [True], "off": [False], "both": [False, True]}[args.depth_fusion]
    for path in args.files:
        for on in settings:
            post.DEPTH_FUSION = on
            errors = overlay_errors(repostprocess(mf.read_motion(path)))
            if not errors:
                print(f"{path.name}: no landmarks in the file (not the BlazePose backend)")
                break
            cells = "  ".join(f"person {k}: {lm:.2f} px vs landmarks, {raw:.2f} px vs raw fit"
                              for k, (lm, raw) in errors.items())
            print(f"{path.name} depth fusion {'on ' if on else 'off'}  {cells}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
