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
# Issue 10: a camera looking down steeply (gym/CCTV style, 4.2 m up) and a low one (0.35 m), and the
# moving cameras. Smaller and shorter than the clips above (640×360, FXAA) to render in minutes.
_SMALL = ["--width", "640", "--height", "360", "--render-aa", "FXAA"]
WORLD = {
    "jumps_down": ["--bvh", "01_01.bvh", "--start", "2.0", "--seconds", "3", "--camera", "down", "--seed", "5", *_SMALL],
    "jumps_low": ["--bvh", "01_01.bvh", "--start", "6.0", "--seconds", "3", "--camera", "low", "--seed", "6", *_SMALL],
    # people on platforms: starts on a 30 cm box, jumps down to the floor (the ground is the floor)
    "platform_down": ["--bvh", "01_01.bvh", "--start", "5.6", "--seconds", "3", "--camera", "diagonal", "--seed", "7",
                      "--platform", "0.3,0.9,1.35", *_SMALL],
}
MOVING = {
    f"{kind}_jumps": ["--bvh", "01_01.bvh", "--start", start, "--seconds", "3", "--camera", cam,
                      "--camera-motion", kind, "--seed", str(seed), *_SMALL]
    for kind, start, cam, seed in (("pan", "2.0", "front", 10), ("tilt", "4.0", "diagonal", 11),
                                   ("shake", "6.0", "front", 12), ("dolly", "2.0", "side", 13),
                                   ("zoom", "8.0", "front", 14))
}

# Held out: other windows of the same takes, other cameras and seeds. Not part of "all": a setting chosen
# on the suite above is checked here, on clips it was not chosen on (benchmarks/accuracy.py --suite holdout).
HOLDOUT = {
    **{f"{kind}_b": ["--bvh", "01_01.bvh", "--start", start, "--seconds", "3", "--camera", cam,
                     "--camera-motion", kind, "--seed", str(seed), *_SMALL]
       for kind, start, cam, seed in (("pan", "10.0", "diagonal", 20), ("tilt", "14.0", "front", 21),
                                      ("shake", "16.0", "diagonal", 22), ("dolly", "8.0", "front", 23),
                                      ("zoom", "2.0", "side", 24))},
    "shake_c": ["--bvh", "01_01.bvh", "--start", "19.0", "--seconds", "3", "--camera", "front",
                "--camera-motion", "shake", "--seed", "26", *_SMALL],
    "jumps_b": ["--bvh", "01_01.bvh", "--start", "14.0", "--seconds", "3", "--camera", "side", "--seed", "30", *_SMALL],
    "jumps_c": ["--bvh", "01_01.bvh", "--start", "18.0", "--seconds", "3", "--camera", "diagonal", "--seed", "31",
                "--betas", "1,0,-1", *_SMALL],
    "down_b": ["--bvh", "01_01.bvh", "--start", "10.0", "--seconds", "3", "--camera", "down", "--seed", "32", *_SMALL],
    "low_b": ["--bvh", "01_01.bvh", "--start", "16.0", "--seconds", "3", "--camera", "low", "--seed", "33", *_SMALL],
    "climb_b": ["--bvh", "01_03.bvh", "--start", "25.0", "--seconds", "3", "--camera", "front", "--seed", "34", *_SMALL],
    "front_b": ["--bvh", "01_01.bvh", "--start", "8.0", "--seconds", "3", "--camera", "front", "--seed", "35",
                "--betas=-1,0.5,0", *_SMALL],
}

# A second held-out set, made after the first had been used to choose settings: it checks a setting
# chosen on "all" + "holdout" (benchmarks/accuracy.py --suite holdout2). Other windows, cameras, seeds.
HOLDOUT2 = {
    "side_c": ["--bvh", "01_03.bvh", "--start", "9.0", "--seconds", "3", "--camera", "side", "--seed", "40", *_SMALL],
    "pan_c": ["--bvh", "01_03.bvh", "--start", "21.0", "--seconds", "3", "--camera", "diagonal",
              "--camera-motion", "pan", "--seed", "41", *_SMALL],
    "low_c": ["--bvh", "01_03.bvh", "--start", "31.0", "--seconds", "3", "--camera", "low", "--seed", "42", *_SMALL],
    "shake_d": ["--bvh", "01_01.bvh", "--start", "0.5", "--seconds", "3", "--camera", "down",
                "--camera-motion", "shake", "--seed", "43", *_SMALL],
    "high_b": ["--bvh", "01_01.bvh", "--start", "11.0", "--seconds", "3", "--camera", "high", "--seed", "44", *_SMALL],
    "dolly_c": ["--bvh", "01_01.bvh", "--start", "19.5", "--seconds", "3", "--camera", "side",
                "--camera-motion", "dolly", "--seed", "45", *_SMALL],
    "pan_d": ["--bvh", "01_01.bvh", "--start", "4.5", "--seconds", "3", "--camera", "low",
              "--camera-motion", "pan", "--seed", "46", *_SMALL],
    "diag_c": ["--bvh", "01_01.bvh", "--start", "13.0", "--seconds", "3", "--camera", "diagonal", "--seed", "47",
               "--betas", "0.5,-1,1", *_SMALL],
}

# A third held-out set, made (stop 29) after the stances' ground depth (GROUND_DEPTH) had been chosen on
# "all" + "holdout" + "holdout2": it checks that choice on clips nobody has looked at (other windows,
# cameras, seeds; two moving cameras, for which the step is off).
HOLDOUT3 = {
    "front_d": ["--bvh", "01_03.bvh", "--start", "6.0", "--seconds", "3", "--camera", "front", "--seed", "60",
                *_SMALL],
    "diag_d": ["--bvh", "01_01.bvh", "--start", "7.0", "--seconds", "3", "--camera", "diagonal", "--seed", "61",
               "--betas", "0,1,0.5", *_SMALL],
    "side_d": ["--bvh", "01_01.bvh", "--start", "15.0", "--seconds", "3", "--camera", "side", "--seed", "62", *_SMALL],
    "high_c": ["--bvh", "01_03.bvh", "--start", "12.0", "--seconds", "3", "--camera", "high", "--seed", "63", *_SMALL],
    "down_c": ["--bvh", "01_01.bvh", "--start", "3.5", "--seconds", "3", "--camera", "down", "--seed", "64", *_SMALL],
    "low_d": ["--bvh", "01_03.bvh", "--start", "18.0", "--seconds", "3", "--camera", "low", "--seed", "65", *_SMALL],
    "tilt_c": ["--bvh", "01_01.bvh", "--start", "17.0", "--seconds", "3", "--camera", "diagonal",
               "--camera-motion", "tilt", "--seed", "66", *_SMALL],
    "shake_e": ["--bvh", "01_03.bvh", "--start", "28.0", "--seconds", "3", "--camera", "front",
                "--camera-motion", "shake", "--seed", "67", *_SMALL],
}

# A fourth held-out set, made (stop 30) before the root-depth fusion was chosen on the four sets above and
# looked at only once it was fixed: other windows, cameras and seeds; four moving cameras.
HOLDOUT4 = {
    "front_e": ["--bvh", "01_03.bvh", "--start", "33.5", "--seconds", "3", "--camera", "front", "--seed", "80",
                *_SMALL],
    "diag_e": ["--bvh", "01_01.bvh", "--start", "19.8", "--seconds", "3", "--camera", "diagonal", "--seed", "81",
               "--betas=-0.5,0,1", *_SMALL],
    "side_e": ["--bvh", "01_03.bvh", "--start", "0.5", "--seconds", "3", "--camera", "side", "--seed", "82", *_SMALL],
    "high_d": ["--bvh", "01_01.bvh", "--start", "1.0", "--seconds", "3", "--camera", "high", "--seed", "83", *_SMALL],
    "down_d": ["--bvh", "01_03.bvh", "--start", "23.0", "--seconds", "3", "--camera", "down", "--seed", "84", *_SMALL],
    "low_e": ["--bvh", "01_01.bvh", "--start", "12.5", "--seconds", "3", "--camera", "low", "--seed", "85", *_SMALL],
    "high_e": ["--bvh", "01_03.bvh", "--start", "16.5", "--seconds", "3", "--camera", "high", "--seed", "86",
               "--betas", "0.5,0.5,-0.5", *_SMALL],
    "pan_e": ["--bvh", "01_03.bvh", "--start", "10.5", "--seconds", "3", "--camera", "front",
              "--camera-motion", "pan", "--seed", "87", *_SMALL],
    "shake_f": ["--bvh", "01_01.bvh", "--start", "9.0", "--seconds", "3", "--camera", "side",
                "--camera-motion", "shake", "--seed", "88", *_SMALL],
    "tilt_d": ["--bvh", "01_03.bvh", "--start", "19.5", "--seconds", "3", "--camera", "low",
               "--camera-motion", "tilt", "--seed", "89", *_SMALL],
    "dolly_d": ["--bvh", "01_01.bvh", "--start", "15.5", "--seconds", "3", "--camera", "diagonal",
                "--camera-motion", "dolly", "--seed", "90", *_SMALL],
}

# The camera-motion stage's cost at 720p (issue 10: ≤ 15 % of the engine's time; benchmarks/accuracy.py
# camera_cost): the translating camera (the costliest path) at 1280×720.
MOVING_720P = {"dolly_jumps_720p": [*MOVING["dolly_jumps"][: -len(_SMALL)], "--width", "1280", "--height", "720",
                                    "--render-aa", "FXAA"]}


SUITES = ("ci", "full", "world", "moving", "moving720", "all", "holdout", "holdout2", "holdout3", "holdout4")


def clips(suite: str) -> dict[str, list[str]]:
    """Name → make_clip arguments of a suite: "ci", "full" (static), "world" (the static clips of
    issue 10: looking down, low, a platform), "moving" (moving cameras), "moving720" (a moving camera at
    1280×720, for the camera-motion cost), "all" (full + world + moving) or "holdout" (static and
    moving clips outside "all", to check settings chosen on it) or "holdout2" (a second such set, made after
    "holdout" had been used to choose settings) or "holdout3" (a third, made after both had) or "holdout4"
    (a fourth, made after all three had)."""
    return {"ci": CI, "full": FULL, "world": WORLD, "moving": MOVING, "moving720": MOVING_720P,
            "all": {**FULL, **WORLD, **MOVING}, "holdout": HOLDOUT, "holdout2": HOLDOUT2,
            "holdout3": HOLDOUT3, "holdout4": HOLDOUT4}[suite]


def is_moving(name: str) -> bool:
    """Whether a clip of the suites has a moving camera (the truth for static/moving detection)."""
    args = {**MOVING, **MOVING_720P, **HOLDOUT, **HOLDOUT2, **HOLDOUT3, **HOLDOUT4}.get(name, [])
    return "--camera-motion" in args


def clip_dir(suite: str) -> Path:
    """Where a suite's clips live."""
    return CI_DIR if suite == "ci" else FULL_DIR
