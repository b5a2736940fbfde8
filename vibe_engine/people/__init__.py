"""Stages 2-3: people in the video — ``detect`` (person detector), ``track`` (tracker), ``boxes``
(user-given boxes instead of the detector)."""
