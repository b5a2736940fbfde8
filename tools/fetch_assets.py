"""How the third-party assets under assets/ were obtained (run by hand; never at test or run time).

    .venv/bin/python tools/fetch_assets.py [--check]

Downloads two wheels from PyPI with pip, extracts the files below and checks their sha256:

* ``mediapipe==0.10.21`` (Apache-2.0): ``mediapipe/modules/pose_detection/pose_detection.tflite``
  -> ``assets/models/pose_detection.tflite``; its ``LICENSE`` -> ``assets/models/LICENSE-mediapipe.txt``.
  The pre/post-processing constants in ``vibe_engine/people/detect.py`` come from the ``PoseDetectionCpu``
  and ``PoseDetectionToRoi`` graph configs compiled into the same wheel's
  ``mediapipe/python/_framework_bindings*.so`` (serialized protobufs next to the graph names).
* ``sports2d==0.8.34`` (BSD-3-Clause): ``Sports2D/Demo/demo.mp4`` -> ``assets/video/demo_two_people.mp4``;
  its ``LICENSE`` -> ``assets/video/LICENSE-sports2d.txt``.

``--check`` only verifies the committed files' hashes.
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ASSETS = [
    # (wheel requirement, member inside the wheel, destination, sha256)
    ("mediapipe==0.10.21", "mediapipe/modules/pose_detection/pose_detection.tflite",
     "assets/models/pose_detection.tflite",
     "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    ("mediapipe==0.10.21", "mediapipe-0.10.21.dist-info/LICENSE",
     "assets/models/LICENSE-mediapipe.txt", None),
    ("sports2d==0.8.34", "Sports2D/Demo/demo.mp4",
     "assets/video/demo_two_people.mp4",
     "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039"),
    ("sports2d==0.8.34", "sports2d-0.8.34.dist-info/licenses/LICENSE",
     "assets/video/LICENSE-sports2d.txt", None),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check() -> int:
    bad = [dst for _, _, dst, digest in ASSETS if digest and sha256(REPO / dst) != digest]
    for dst in bad:
        sys.stderr.write(f"hash mismatch: {dst}\n")
    return 1 if bad else 0


def fetch() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for requirement in sorted({req for req, _, _, _ in ASSETS}):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", requirement, "-d", tmp],
                           check=True)
        wheels = {whl.name.split("-")[0].lower(): whl for whl in Path(tmp).glob("*.whl")}
        for requirement, member, dst, _ in ASSETS:
            with zipfile.ZipFile(wheels[requirement.split("==")[0]]) as zf:
                (REPO / dst).parent.mkdir(parents=True, exist_ok=True)
                (REPO / dst).write_bytes(zf.read(member))
    return check()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only verify the committed files")
    sys.exit(check() if parser.parse_args().check else fetch())
