"""The VIBE generator at inference time: backbone → temporal encoder → regressor + SMPL.

The three stages are public so the engine can stream long tracks: features are extracted
in batches of crops, the GRU state is carried across chunks, and the regressor runs per frame.
``forward(crops) == regress(encode(extract_features(crops)))``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vibe_engine.models.backbone import FEATURE_DIM, HMRBackbone
from vibe_engine.models.body import BodyArrays
from vibe_engine.models.regressor import Regressor
from vibe_engine.models.temporal import TemporalEncoder

CROP_SIDE = 224

log = logging.getLogger(__name__)


class VibeGenerator(nn.Module):
    """VIBE_Demo equivalent. Sub-modules: ``backbone`` (SPIN ResNet-50), ``encoder`` (GRU),
    ``regressor`` (IEF + SMPL). ``body`` holds the SMPL arrays (numpy) used by the regressor.

    Args:
        body: SMPL arrays (see BodyArrays).
        compute_dtype: dtype of backbone and encoder weights (float32 or bfloat16); the
            regressor and SMPL run in float32. A generator converted with ``.double()`` and
            ``compute_dtype=torch.float64`` runs and returns float64 throughout (the equivalence
            tests use it: float32 results depend on the CPU's kernel blocking).
        channels_last: run the backbone in NHWC memory format (faster on CPU and GPU).
    """

    def __init__(self, body: BodyArrays, compute_dtype: torch.dtype = torch.float32,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.backbone = HMRBackbone()
        self.encoder = TemporalEncoder()
        self.regressor = Regressor(body)
        self.body = body
        self.compute_dtype = compute_dtype
        self.channels_last = channels_last
        self._compiled: nn.Module | None = None
        self._compiled_batch = 0
        self._head: Callable[..., Any] | None = None  # the Head artefact's runner (models/head.py)
        self._head_frames = 0
        #: VIBE's motion discriminator (fp32) when the checkpoint carries one (set by load_generator)
        self.motion_discriminator: nn.Module | None = None

    def compile_backbone(self) -> None:
        """Run the backbone through ``torch.compile`` (Inductor, weights frozen as constants).

        The first call of each batch size compiles (seconds to tens of seconds on a CPU; the
        kernels are cached under the system temp folder, ``torchinductor_<user>``); later calls are
        faster than eager. Batches smaller than the first one are zero-padded to its size so the
        last partial batch does not recompile. Inference only (call after loading weights).
        """
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        self._compiled = torch.compile(self.backbone, dynamic=False)

    def prepare_compiled_backbone(self, batch: int, *, build: bool = True, cache_dir=None,
                                  on_build=None):
        """Use the AOTInductor artefact of this backbone for ``batch`` crops (models/compiled.py):
        loaded from the cache (≈0.1 s), or built once (minutes; ``on_build(reason)`` is called
        first) when ``build``. Returns ``compiled.Prepared``; its ``runner`` is None when the
        backbone stays eager (``reason`` says why: no artefact and ``build`` false, or a failure).
        """
        from vibe_engine.models.compiled import ArtefactKey, load_or_build

        key = ArtefactKey("hmr-backbone", self.device.type, str(self.compute_dtype), self.channels_last,
                          batch)
        example = torch.zeros(batch, 3, CROP_SIDE, CROP_SIDE, device=self.device, dtype=self.compute_dtype)
        if self.channels_last:
            example = example.contiguous(memory_format=torch.channels_last)
        prepared = load_or_build(self.backbone, example, key, cache_dir=cache_dir, build=build,
                                 on_build=on_build)
        if prepared.runner is not None:
            self._compiled, self._compiled_batch = prepared.runner, batch
        return prepared

    def prepare_compiled_head(self, frames: int, *, build: bool = True, cache_dir=None, on_build=None):
        """Use the AOTInductor artefact of the head (regressor + SMPL, models/head.py) for calls of
        ``frames`` frames (smaller ones zero-padded), like :meth:`prepare_compiled_backbone`."""
        from vibe_engine.models.compiled import ArtefactKey, load_or_build
        from vibe_engine.models.head import Head, example_input

        dtype = self.regressor.fc1.weight.dtype
        key = ArtefactKey("vibe-head", self.device.type, str(dtype), False, frames)
        prepared = load_or_build(Head(self.regressor), example_input(frames, self.device, dtype), key,
                                 cache_dir=cache_dir, build=build, on_build=on_build)
        if prepared.runner is not None:
            self._head, self._head_frames = prepared.runner, frames
        return prepared

    def uncompile_backbone(self) -> None:
        """Back to the eager backbone and head (after a failed compilation)."""
        self._compiled, self._compiled_batch = None, 0
        self._head, self._head_frames = None, 0

    def warm_up(self, batch: int) -> float:
        """Compile (if ``compile_backbone`` was called) for ``batch`` crops; returns seconds."""
        start = time.perf_counter()
        if self._compiled is not None:
            with torch.inference_mode():
                self.extract_features(torch.zeros(batch, 3, CROP_SIDE, CROP_SIDE))
            log.info("backbone compiled for batch %d in %.1f s", batch, time.perf_counter() - start)
        return time.perf_counter() - start

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.regressor.fc1.weight.device

    def extract_features(self, crops: torch.Tensor) -> torch.Tensor:
        """crops (B,3,224,224) ImageNet-normalised RGB → features (B,2048) float32."""
        x = crops.to(device=self.device, dtype=self.compute_dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self._compiled is None:
            return self.backbone(x).float()
        step = self._compiled_batch or x.shape[0]
        return torch.cat([self._run_compiled(x[i:i + step]).float() for i in range(0, x.shape[0], step)])

    def _run_compiled(self, x: torch.Tensor) -> torch.Tensor:
        """Compiled backbone; a batch smaller than the first one is zero-padded to its size."""
        n = x.shape[0]
        self._compiled_batch = self._compiled_batch or n
        if n < self._compiled_batch:
            pad = x.new_zeros((self._compiled_batch - n, *x.shape[1:]))
            x = torch.cat([x, pad]).contiguous(memory_format=torch.channels_last if self.channels_last
                                               else torch.contiguous_format)
        with torch.inference_mode():  # one grad mode for every call: no recompilation
            return self._compiled(x)[:n]

    def encode(self, feats: torch.Tensor, hidden: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (N,T,2048) → (y (N,T,2048) float32, hidden (2,N,1024) float32).

        Pass the returned ``hidden`` with the next chunk of the same N sequences to get exactly
        the result of one pass over the concatenated chunks; ``hidden=None`` starts at zero.
        """
        x = feats.to(device=self.device, dtype=self.encoder.linear.weight.dtype)
        y, hidden = self.encoder(x, hidden)
        out = torch.promote_types(self.compute_dtype, torch.float32)
        return y.to(out), hidden.to(out)

    def regress(self, y: torch.Tensor, with_verts: bool = True) -> dict[str, torch.Tensor]:
        """y (N,T,2048) → dict, float32, each shaped (N,T,…):

        theta (85: cam s,tx,ty · 72 axis-angle pose, SMPL joint order, global first · 10 betas),
        rotmat (24,3,3), kp_3d (49,3) metres in the camera frame (x right, y down, z forward;
        no translation), kp_2d (49,2) normalised crop coordinates in [-1,1], verts (6890,3)
        metres if ``with_verts``.
        """
        n, t = y.shape[:2]
        flat = y.reshape(n * t, FEATURE_DIM).to(self.device)
        out = self.regressor(flat, with_verts=with_verts) if self._head is None else self._run_head(flat)
        if not with_verts:
            out.pop("verts", None)
        return {k: v.reshape(n, t, *v.shape[1:]) for k, v in out.items()}

    def _run_head(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The compiled head on y (B,2048), in calls of its frame count (the last one zero-padded)."""
        from vibe_engine.models.head import HEAD_OUTPUTS

        y = y.to(self.regressor.fc1.weight.dtype)
        step, parts = self._head_frames, []
        for i in range(0, y.shape[0], step):
            x = y[i:i + step]
            m = x.shape[0]
            if m < step:
                x = torch.cat([x, x.new_zeros(step - m, FEATURE_DIM)])
            with torch.inference_mode():
                parts.append([o[:m] for o in self._head(x.contiguous())])
        return {k: torch.cat(col) for k, col in zip(HEAD_OUTPUTS, zip(*parts))}

    def forward(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        """crops (N,T,3,224,224) → the dict of :meth:`regress` (with vertices)."""
        n, t = crops.shape[:2]
        feats = self.extract_features(crops.reshape(n * t, 3, CROP_SIDE, CROP_SIDE))
        y, _ = self.encode(feats.reshape(n, t, FEATURE_DIM))
        return self.regress(y)
