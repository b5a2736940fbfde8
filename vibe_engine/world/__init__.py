"""Camera and world: ``camera`` (crop camera ⇄ pinhole), ``intrinsics`` (focal sources),
``selfcal`` (focal self-calibration), ``camera_motion`` (moving camera from the background),
``grounding`` (ground plane and the world frame from all people)."""
