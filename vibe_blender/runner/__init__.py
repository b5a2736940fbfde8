"""Process plumbing for the engine subprocess (stdlib only, no bpy)."""
