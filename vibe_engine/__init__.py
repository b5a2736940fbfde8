"""vibe_engine: video → people → VIBE (or BlazePose) → one motion file.

Runs in its own Python process with torch. Importing this package is cheap: heavy modules
(torch, cv2, smplx) are imported by the submodules that need them.
"""

__version__ = "0.1.0"
