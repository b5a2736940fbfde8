"""Benchmark of the VIBE generator stages with random weights in the official layout.

Prints frames/s and ms/frame for the backbone, the temporal encoder, the regressor + SMPL and
end to end, for fp32 eager (NCHW, the baseline), fp32 channels_last and bf16 (+ channels_last),
(optionally a torch.compile'd bf16 backbone) at several batch sizes, with ratios against the fp32 eager baseline measured in the same run,
and the process' peak RSS. Usage:

    .venv/bin/python benchmarks/generator.py [--device cpu|cuda] [--frames 16] [--batch-sizes 8,32] [--repeats 2] [--compile]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from tests.fixtures.synthetic import make_crops, official_files  # noqa: E402
from vibe_engine.models import load_generator  # noqa: E402

MODES = {  # name → load_generator options
    "fp32 eager": {"precision": "fp32", "channels_last": False},
    "fp32 channels_last": {"precision": "fp32", "channels_last": True},
    "bf16 channels_last": {"precision": "bf16", "channels_last": True},
}
STAGES = ("backbone", "encoder", "regressor+SMPL", "end-to-end")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stage_fns(model, crops: torch.Tensor) -> dict:
    """Callables for each stage on one batch of B crops (one sequence of B frames)."""
    b = crops.shape[0]
    with torch.inference_mode():  # one pass of every stage: warm-up (and compilation)
        feats = model.extract_features(crops).reshape(1, b, -1)
        y, _ = model.encode(feats)
        model.regress(y)
    return {
        "backbone": lambda: model.extract_features(crops),
        "encoder": lambda: model.encode(feats),
        "regressor+SMPL": lambda: model.regress(y),
        "end-to-end": lambda: model(crops[None]),
    }


def _time(fn, batches: int, device: torch.device) -> float:
    """Seconds per batch over ``batches`` calls."""
    with torch.inference_mode():
        start = time.perf_counter()
        for _ in range(batches):
            fn()
        _sync(device)
        return (time.perf_counter() - start) / batches


def _measure(models: dict, crops: torch.Tensor, frames: int, repeats: int, device: torch.device) -> dict:
    """Best seconds/frame per (mode, stage). Modes are timed round-robin, ``repeats`` rounds,
    so load from other processes spreads over all modes instead of hitting one."""
    b = crops.shape[0]
    batches = max(1, frames // b)
    fns = {name: _stage_fns(model, crops) for name, model in models.items()}  # also warms up
    best: dict = {}
    for _ in range(repeats):
        for name, stages in fns.items():
            for stage, fn in stages.items():
                sec = _time(fn, batches, device) / b
                best[name, stage] = min(best.get((name, stage), float("inf")), sec)
    return best


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _compiled(model):
    """bf16 model whose backbone is compiled by Inductor with frozen weights (opt-in mode)."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    model.backbone = torch.compile(model.backbone)
    return model


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="vibe_bench_") as tmp:
        files = official_files(Path(tmp))
        models = {name: load_generator(files["vibe"], device=device, **opts) for name, opts in MODES.items()}
        if args.compile:
            models["bf16 compiled"] = _compiled(load_generator(files["vibe"], device=device, precision="bf16"))
    print(f"# VIBE generator benchmark: device={device}, torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}, frames/measurement={args.frames}, repeats={args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<20} {'batch':>5} {'stage':<15} {'frames/s':>9} {'ms/frame':>9} {'vs fp32 eager':>13}")
    control = []  # regressor+SMPL runs the same fp32 code in every mode: its ratios show the noise
    for b in args.batch_sizes:
        crops = make_crops(1, b, seed=0)[0].to(device)
        best = _measure(models, crops, args.frames, args.repeats, device)
        for name in models:
            for stage in STAGES:
                sec, base = best[name, stage], best[next(iter(models)), stage]
                control += [base / sec] if stage == "regressor+SMPL" else []
                print(f"{name:<20} {b:>5} {stage:<15} {1 / sec:>9.1f} {1000 * sec:>9.2f} "
                      f"{base / sec:>12.2f}x", flush=True)
    print(f"# noise: regressor+SMPL is identical fp32 code in every mode; its ratios span "
          f"{min(control):.2f}x-{max(control):.2f}x (1.00x on a quiet machine)")
    print(f"# peak RSS {_peak_rss_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=16, help="frames per timed measurement (≥ 1 batch)")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32])
    parser.add_argument("--repeats", type=int, default=2, help="round-robin rounds (best is kept)")
    parser.add_argument("--compile", action="store_true",
                        help="also time a torch.compile'd bf16 backbone (compilation takes minutes)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
