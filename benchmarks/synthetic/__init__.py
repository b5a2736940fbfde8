"""Synthetic benchmark: clips with exact ground truth and the metrics animators care about."""
