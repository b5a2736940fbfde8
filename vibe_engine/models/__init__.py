"""VIBE generator that loads the official checkpoints unchanged.

Public API:
  * :func:`load_generator` → :class:`VibeGenerator` in eval mode;
  * ``VibeGenerator.extract_features / encode / regress / forward`` (see generator.py);
  * ``VibeGenerator.body`` → :class:`BodyArrays` (SMPL arrays for the motion file);
  * ``VibeGenerator.motion_discriminator`` → :class:`MotionDiscriminator` or None (see discriminator.py).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from vibe_engine.errors import BadInputError, ModelError
from vibe_engine.models.backbone import fold_batchnorm
from vibe_engine.models.body import BodyArrays
from vibe_engine.models.body_io import SMPL_PREFIX, body_from_state_dict, read_body_file
from vibe_engine.models.checkpoints import SPIN_HEAD_KEYS, check_keys, load_checkpoint, section
from vibe_engine.models.discriminator import MotionDiscriminator, build_discriminator
from vibe_engine.models.generator import VibeGenerator
from vibe_engine.models.layout import SMPL_SHAPES, VIBE_CORE_SHAPES

__all__ = ["BodyArrays", "VibeGenerator", "load_generator", "SPIN_FILE_NAME"]

log = logging.getLogger(__name__)

#: File name the official VIBE data folder uses for the SPIN backbone checkpoint.
SPIN_FILE_NAME = "spin_model_checkpoint.pth.tar"
#: Compute dtype of each ``vibe_blender.core.settings.PRECISIONS`` choice.
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def load_generator(
    vibe_checkpoint: str | Path,
    spin_checkpoint: str | Path | None = None,
    *,
    body_model: str | Path | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    channels_last: bool = True,
    compile: bool = False,
    encoder_precision: str | None = None,
    wide_stages: tuple[str, ...] = (),
    fold_bn: bool = True,
) -> VibeGenerator:
    """Build VIBE's demo generator from the official files, unchanged.

    Args:
        vibe_checkpoint: ``vibe_model_wo_3dpw.pth.tar`` (or ``_w_3dpw``); its ``gen_state_dict``
            gives the temporal encoder, the regressor, the mean parameters and (embedded) SMPL.
        spin_checkpoint: ``spin_model_checkpoint.pth.tar`` (backbone, ``['model']``); default:
            the file of that name next to ``vibe_checkpoint``.
        body_model: optional SMPL ``.npz``/``.pkl`` overriding the embedded SMPL arrays
            (required if the VIBE checkpoint carries no ``regressor.smpl.*`` arrays).
        device: "cpu", "cuda", "cuda:1", …
        precision: "fp32", or "bf16" (backbone in bfloat16; encoder, regressor + SMPL fp32). For
            bf16 the backbone's BatchNorms are first folded into its convolutions in float64
            (``backbone.fold_batchnorm``: one rounding per weight) and the features are pooled in
            float32; fp32 keeps the official unfolded layers.
        channels_last: NHWC backbone (same results to float rounding, faster).
        encoder_precision: the temporal encoder's (GRU's) precision; default "fp32" for both
            precisions: with the folded bf16 backbone, a bf16 GRU is the largest error left (joints
            max 4.2 mm vs 1.5 mm with an fp32 GRU on the benchmark's crops) and hardly faster (the
            recurrent matrix–vector products are bound by reading the weights).
        wide_stages: backbone stages kept in float32 with a bf16 precision (e.g. ("layer4",); the
            accuracy/speed trade-off is measured by benchmarks/generator.py --variants).
        fold_bn: False keeps the unfolded BatchNorms with a bf16 precision (the earlier recipe; for
            benchmarks/generator.py --variants).
        compile: ``torch.compile`` the backbone (Inductor, frozen weights; see
            ``VibeGenerator.compile_backbone``): slow first batch, faster afterwards.
    Returns:
        The model in eval mode with gradients disabled.
    Raises:
        ModelError for a missing/foreign/mismatched file; BadInputError for a bad option.
    """
    dtype, device = _options(precision, device)
    enc_dtype = _options(encoder_precision, device)[0] if encoder_precision is not None else torch.float32
    vibe_path = Path(vibe_checkpoint)
    spin_path = Path(spin_checkpoint) if spin_checkpoint is not None else _sibling_spin(vibe_path)
    gen, disc = _gen_state(vibe_path)
    body = _body(gen, body_model, vibe_path)
    model = VibeGenerator(body, compute_dtype=dtype, channels_last=channels_last)
    _load_backbone(model, spin_path)
    _load_generator_weights(model, gen)
    if fold_bn and dtype not in (torch.float32, torch.float64):
        fold_batchnorm(model.backbone)
    model.backbone.set_precision(dtype, wide_stages)
    model.encoder.to(dtype=enc_dtype)
    if channels_last:
        model.backbone.to(memory_format=torch.channels_last)
    model.to(device).eval().requires_grad_(False)
    model.motion_discriminator = disc.to(device) if disc is not None else None
    if compile:
        model.compile_backbone()
    log.info("VIBE generator loaded from %s + %s (%s, %s)", vibe_path.name, spin_path.name, device, precision)
    return model


def _options(precision: str, device: str | torch.device) -> tuple[torch.dtype, torch.device]:
    if precision not in PRECISIONS:
        raise BadInputError(f"precision {precision!r} is not supported; use one of {sorted(PRECISIONS)}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise BadInputError(f"device {device!r} is not a valid torch device; use 'cpu' or 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BadInputError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return PRECISIONS[precision], dev


def _sibling_spin(vibe_path: Path) -> Path:
    path = vibe_path.with_name(SPIN_FILE_NAME)
    if not path.is_file():
        raise ModelError(f"SPIN backbone checkpoint {path} not found; put {SPIN_FILE_NAME} (from the "
                         "VIBE data folder) next to the VIBE checkpoint or pass spin_checkpoint=")
    return path


def _gen_state(vibe_path: Path) -> tuple[Mapping[str, Any], MotionDiscriminator | None]:
    """``gen_state_dict`` (checked strictly) and the motion discriminator (None when absent)."""
    ckpt = load_checkpoint(vibe_path, "VIBE checkpoint")
    hint = ("this looks like the SPIN checkpoint; pass it as spin_checkpoint" if "model" in ckpt
            else "pass vibe_model_wo_3dpw.pth.tar")
    gen = section(ckpt, "gen_state_dict", "VIBE checkpoint", vibe_path, hint)
    has_smpl = any(k.startswith(SMPL_PREFIX) for k in gen)
    expected = {**VIBE_CORE_SHAPES, **(SMPL_SHAPES if has_smpl else {})}
    check_keys(gen, expected, f"VIBE checkpoint {vibe_path.name} gen_state_dict")
    return gen, build_discriminator(ckpt, f"VIBE checkpoint {vibe_path.name}")


def _body(gen: Mapping[str, Any], body_model: str | Path | None, vibe_path: Path) -> BodyArrays:
    embedded = body_from_state_dict(gen, vibe_path) if any(k.startswith(SMPL_PREFIX) for k in gen) else None
    if body_model is not None:
        fallback = embedded.J_regressor_extra if embedded is not None else None
        return read_body_file(body_model, fallback_extra=fallback)
    if embedded is None:
        raise ModelError(f"VIBE checkpoint {vibe_path} carries no SMPL arrays; pass body_model= "
                         "(SMPL_NEUTRAL.pkl or a .npz)")
    return embedded


def _load_backbone(model: VibeGenerator, spin_path: Path) -> None:
    ckpt = load_checkpoint(spin_path, "SPIN checkpoint")
    hint = ("this looks like a VIBE checkpoint; pass spin_model_checkpoint.pth.tar" if "gen_state_dict" in ckpt
            else "pass spin_model_checkpoint.pth.tar")
    state = section(ckpt, "model", "SPIN checkpoint", spin_path, hint)
    expected = {k: tuple(v.shape) for k, v in model.backbone.state_dict().items()}
    check_keys(state, expected, f"SPIN checkpoint {spin_path.name} model", ignored=SPIN_HEAD_KEYS)
    model.backbone.load_state_dict({k: state[k] for k in expected}, strict=True)


def _load_generator_weights(model: VibeGenerator, gen: Mapping[str, Any]) -> None:
    enc = {k[len("encoder."):]: v for k, v in gen.items() if k.startswith("encoder.")}
    model.encoder.load_state_dict(enc, strict=True)
    reg = {k[len("regressor."):]: v for k, v in gen.items()
           if k.startswith("regressor.") and not k.startswith(SMPL_PREFIX)}
    result = model.regressor.load_state_dict(reg, strict=False)
    leftover = [k for k in result.missing_keys if not k.startswith("smpl.")] + list(result.unexpected_keys)
    if leftover:  # cannot happen after check_keys; guards against a layout drift
        raise ModelError(f"regressor weights do not fit: {leftover[:4]}")
