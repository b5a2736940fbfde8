"""Shared pytest configuration. Imports nothing heavy (no bpy, no torch) at module level."""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
