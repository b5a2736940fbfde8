"""Independent readers of the exported files, as game engines and DCCs read them.

- :mod:`.tools`: the external readers installed by ``make test`` (``make readers``): the Autodesk
  FBX SDK through FBX2glTF (npm ``fbx2gltf``), the Khronos glTF validator (npm ``gltf-validator``)
  and Assimp (Debian ``assimp-utils``). A missing reader fails the test that needs it.
- :mod:`.gltf`: a GLB parser with forward kinematics (node defaults and animation samples).
- :mod:`.assimp_xml`: Assimp's XML dump → node tree, animation keys, bone weights.
- :mod:`.bvh`: a root-positions-only BVH reader (BVH's standard semantics) next to ``bvhio``.
"""
