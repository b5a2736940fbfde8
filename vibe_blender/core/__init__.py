"""Pure core of the add-on: stdlib + numpy only. Never imports bpy or mathutils."""
