"""Motion post-processing (numpy): smoothing, ground plane, foot contacts, foot locking.

Every step is switchable and works on arrays of one track; the raw output is kept by the caller
(``pose_raw``/``transl_raw`` in the motion file). Time always comes from the frame timestamps
(seconds), so variable-frame-rate video is filtered correctly.
"""
