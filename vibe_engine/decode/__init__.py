"""Stage 1 of the pipeline: decoding the video (``video``: streaming reader, true timestamps, prefetch)."""
