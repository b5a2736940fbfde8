"""Headless Workbench rendering of a posed body over a ground plane (bpy wheel), one PNG per frame.

World frame: Blender's, z up, ground at z = 0, metres. The camera is given OpenCV-style
(world_from_camera 4×4 with x right, y down, z forward; focal length in pixels; centred principal
point). Clothes are vertex colours chosen from each vertex's dominant skin joint, with left and
right sleeves and legs in different shades so that left/right stays visible.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

SKIN = (0.80, 0.60, 0.48)
SHIRT_L, SHIRT_R = (0.75, 0.18, 0.15), (0.85, 0.45, 0.12)
TROUSERS_L, TROUSERS_R = (0.12, 0.20, 0.55), (0.10, 0.38, 0.45)
SHOES = (0.08, 0.08, 0.08)
BOX = (0.55, 0.40, 0.25)  # a wooden platform (make_clip --platform)
BOX_FACES = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))
# dominant SMPL joint → colour
JOINT_COLOURS = {
    0: TROUSERS_L, 1: TROUSERS_L, 2: TROUSERS_R, 4: TROUSERS_L, 5: TROUSERS_R,
    7: SHOES, 8: SHOES, 10: SHOES, 11: SHOES,
    3: SHIRT_L, 6: SHIRT_L, 9: SHIRT_L, 13: SHIRT_L, 14: SHIRT_R, 16: SHIRT_L, 17: SHIRT_R,
    18: SHIRT_L, 19: SHIRT_R, 12: SKIN, 15: SKIN, 20: SKIN, 21: SKIN, 22: SKIN, 23: SKIN,
}
GROUND_SIZE = 30.0  # m
GROUND_TILES = 30
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])


def vertex_colours(weights: np.ndarray) -> np.ndarray:
    """RGBA (V,4) float32 per vertex from its dominant joint in ``weights`` (V,24)."""
    table = np.array([JOINT_COLOURS[j] + (1.0,) for j in range(24)], np.float32)
    return table[np.argmax(weights, axis=1)]


def _reset_scene(width: int, height: int, aa: str = "8"):
    """Empty factory scene set up for Workbench rendering at width × height."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "VERTEX"
    scene.display.shading.show_shadows = True
    scene.display.render_aa = aa
    scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.55, 0.62, 0.70)
    return scene


def _add_mesh(name: str, verts: np.ndarray, faces: np.ndarray, colours: np.ndarray, domain: str):
    """Mesh object with a colour attribute (``domain`` POINT or CORNER)."""
    import bpy

    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    attr = mesh.color_attributes.new("Col", "FLOAT_COLOR", domain)
    attr.data.foreach_set("color", colours.astype(np.float32).ravel())
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _ground() -> None:
    """A checkered ground plane at z = 0 (corner colours)."""
    n, half = GROUND_TILES, GROUND_SIZE / 2
    xs = np.linspace(-half, half, n + 1)
    verts = np.array([(x, y, 0.0) for y in xs for x in xs])
    faces, colours = [], []
    for i in range(n):
        for j in range(n):
            a = i * (n + 1) + j
            faces.append((a, a + 1, a + n + 2, a + n + 1))
            shade = 0.45 if (i + j) % 2 else 0.62
            colours.extend([(shade, shade, shade * 0.95, 1.0)] * 4)
    _add_mesh("ground", verts, np.array(faces), np.array(colours), "CORNER")


def _box(corners: np.ndarray) -> None:
    """A box from its 8 corners (bottom 4 then top 4, each face's quad from BOX_FACES)."""
    colours = np.array([BOX + (1.0,)] * 8, np.float32)
    _add_mesh("platform", np.asarray(corners, np.float64), np.array(BOX_FACES), colours, "POINT")


def _camera(width: int):
    """A Blender camera object (horizontal 36 mm sensor) placed per frame by :func:`_place`."""
    import bpy

    cam = bpy.data.cameras.new("camera")
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = 36.0
    cam.clip_end = 200.0
    obj = bpy.data.objects.new("camera", cam)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.scene.camera = obj
    return obj


def _place(obj, world_from_camera: np.ndarray, focal_px: float, width: int) -> None:
    """Set the camera to an OpenCV pinhole camera (4,4 camera → world; focal px; centred principal point)."""
    from mathutils import Matrix

    obj.data.lens = float(focal_px) * obj.data.sensor_width / width
    obj.matrix_world = Matrix((world_from_camera @ OPENCV_TO_BLENDER_CAMERA).tolist())


def render_frames(frames_world: np.ndarray, faces: np.ndarray, colours: np.ndarray, out_dir: Path,
                  world_from_camera: np.ndarray, focal_px, width: int, height: int, aa: str = "8",
                  box: np.ndarray | None = None) -> list[Path]:
    """Render each posed mesh of ``frames_world`` (T,V,3) to ``out_dir``/NNNNN.png; returns the paths.

    ``world_from_camera``: (4,4) for a static camera or (T,4,4) per frame; ``focal_px``: a number
    or (T,) per frame (zoom); ``aa``: Workbench anti-aliasing ("8" samples, or "FXAA": ≈ 5× faster);
    ``box``: optional (8,3) corners of a platform on the ground (make_clip.platform_box)."""
    import bpy

    n = len(frames_world)
    cams = np.broadcast_to(np.asarray(world_from_camera, np.float64), (n, 4, 4))
    focals = np.broadcast_to(np.asarray(focal_px, np.float64), (n,))
    scene = _reset_scene(width, height, aa)
    _ground()
    if box is not None:
        _box(box)
    camera = _camera(width)
    body = _add_mesh("body", frames_world[0], faces, colours, "POINT")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, verts in enumerate(frames_world):
        _place(camera, cams[t], focals[t], width)
        body.data.vertices.foreach_set("co", verts.astype(np.float32).ravel())
        body.data.update()
        scene.render.filepath = str(out_dir / f"{t:05d}.png")
        bpy.ops.render.render(write_still=True)
        paths.append(out_dir / f"{t:05d}.png")
    return paths
