"""Benchmark of the VIBE generator stages with random weights in the official layout.

Prints frames/s and ms/frame for the backbone, the temporal encoder, the regressor + SMPL and
end to end, for fp32 eager (NCHW: the official demo's forward, the baseline), fp32 channels_last,
bf16 (+ channels_last), optionally the bf16 backbone from its AOTInductor artefact (``--aoti``;
built into ``--cache`` when missing, the build time is printed) and a torch.compile'd bf16
backbone (``--compile``), at several batch sizes, with ratios against the fp32 eager baseline
measured in the same run; then the joints' distance to fp32 in mm on the same fixed crops, the warm
start of the AOTInductor path in a fresh process (``--aoti``), and the process' peak RSS.

``--aoti`` rows: "bf16 aoti backbone" (only the backbone compiled), "bf16 aoti" (backbone and
head = regressor + SMPL compiled; the GRU stays eager, see models/head.py) and "fp32 aoti" (the
same in float32: the compiled path of a CPU without native bf16, where bf16 is emulated);
``--variants`` adds the backbone precision variants of VARIANTS. Usage:

    .venv/bin/python benchmarks/generator.py [--device cpu|cuda] [--frames 16] [--batch-sizes 8,32]
        [--repeats 2] [--aoti [--variants]] [--cache DIR] [--compile]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
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

#: Default artefact folder of the benchmark (its random weights must not land in the user cache).
BENCH_CACHE = Path(tempfile.gettempdir()) / "vibe_bench_compiled"

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


#: ``--variants``: further bf16 AOTInductor rows (name → load_generator options), for the
#: precision/speed trade-off of the backbone.
VARIANTS = {
    "bf16 aoti unfolded": {"fold_bn": False},  # BN not folded (the earlier recipe)
    "bf16 aoti layer4 fp32": {"wide_stages": ("layer4",)},
    "bf16 aoti l3+4 fp32": {"wide_stages": ("layer3", "layer4")},
}


def _aoti(vibe: Path, device: torch.device, batch: int, cache: Path, head: bool = True, precision: str = "bf16",
          **options):
    """channels_last model of ``precision`` whose backbone (and, with ``head``, regressor + SMPL) run
    their AOTInductor artefacts for ``batch`` crops/frames."""
    model = load_generator(vibe, device=device, precision=precision, **options)
    # a variant's backbone: its own folder (the same file name, other weights); the head is the same
    variant = cache / "-".join(f"{k}={v}" for k, v in options.items()).translate(str.maketrans("(),' ", "_____"))
    parts = [("backbone", model.prepare_compiled_backbone, variant if options else cache)]
    parts += [("head", model.prepare_compiled_head, cache)] if head else []
    for what, prepare, folder in parts:
        prepared = prepare(batch, cache_dir=folder, on_build=lambda why: print(
            f"# building the AOTInductor {what} artefact for batch {batch} ({why}) ...", flush=True))
        print(f"# AOTInductor {what} artefact {prepared.path.name}: {prepared.state} in {prepared.seconds:.1f} s "
              f"{prepared.reason}".rstrip(), flush=True)
        if prepared.runner is None:
            raise SystemExit(f"AOTInductor path unavailable: {prepared.reason}")
    return model


def _joints_mm(models: dict, crops: torch.Tensor) -> None:
    """Max / mean distance of each mode's 49 joints (kp_3d) to fp32 eager's, in mm."""
    with torch.inference_mode():
        out = {name: m(crops[None])["kp_3d"][0].double().cpu() for name, m in models.items()}
    ref, eager16 = out[next(iter(models))], out.get("bf16 channels_last")
    print(f"{'mode':<22} {'joints vs fp32 eager: max mm':>28} {'mean mm':>8} {'vs bf16 eager: max mm':>22}")
    for name, kp in out.items():
        d = 1000 * (kp - ref).norm(dim=-1)
        e = f"{float(1000 * (kp - eager16).norm(dim=-1).max()):>22.3f}" if eager16 is not None else ""
        print(f"{name:<22} {float(d.max()):>28.3f} {float(d.mean()):>8.3f} {e}")


def _warm_start(vibe: Path, device: torch.device, batch: int, cache: Path) -> None:
    """A fresh process: import, load_generator, load the artefact, first batch (seconds each)."""
    cmd = [sys.executable, __file__, "--warm-start-child", str(vibe), "--device", str(device),
           "--batch-sizes", str(batch), "--cache", str(cache)]
    times = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    print("# warm start in a fresh process (s): " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))


def _warm_start_child(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    times = {}
    model = load_generator(args.warm_start_child, device=args.device, precision="bf16")
    times["load_generator"] = time.perf_counter() - start
    times["artefact load"] = 0.0
    for prepare in (model.prepare_compiled_backbone, model.prepare_compiled_head):
        prepared = prepare(args.batch_sizes[0], cache_dir=args.cache, build=False)
        if prepared.runner is None:
            raise SystemExit(f"no valid artefact: {prepared.reason}")
        times["artefact load"] += prepared.seconds
    crops = make_crops(1, args.batch_sizes[0], seed=0)[0]
    t = time.perf_counter()
    with torch.inference_mode():
        model(crops[None])
    times["first batch"] = time.perf_counter() - t
    t = time.perf_counter()
    with torch.inference_mode():
        model(crops[None])
    times["second batch"] = time.perf_counter() - t
    times["warm start (artefact load + first batch - second batch)"] = (
        times["artefact load"] + times["first batch"] - times["second batch"])
    print(json.dumps(times))


def run(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory(prefix="vibe_bench_") as tmp:
        files = official_files(Path(tmp))
        models = {name: load_generator(files["vibe"], device=device, **opts) for name, opts in MODES.items()}
        if args.compile:
            models["bf16 compiled"] = _compiled(load_generator(files["vibe"], device=device, precision="bf16"))
        if args.aoti:
            _run_aoti(args, files["vibe"], device, models)
            return
        _table(args, lambda _batch: models, device)
    print(f"# peak RSS {_peak_rss_mib():.0f} MiB")


def _table(args: argparse.Namespace, models_for, device: torch.device) -> None:
    """The speed table: every mode × batch size × stage, ratios to fp32 eager."""
    print(f"# VIBE generator benchmark: device={device}, torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}, frames/measurement={args.frames}, repeats={args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<22} {'batch':>5} {'stage':<15} {'frames/s':>9} {'ms/frame':>9} {'vs fp32 eager':>13}")
    control = []
    for b in args.batch_sizes:
        models = models_for(b)
        crops = make_crops(1, b, seed=0)[0].to(device)
        best = _measure(models, crops, args.frames, args.repeats, device)
        for name in models:
            for stage in STAGES:
                sec, base = best[name, stage], best[next(iter(models)), stage]
                control += [base / sec] if stage == "regressor+SMPL" and name in MODES else []
                print(f"{name:<22} {b:>5} {stage:<15} {1 / sec:>9.1f} {1000 * sec:>9.2f} "
                      f"{base / sec:>12.2f}x", flush=True)
        _joints_mm(models, crops)
    print(f"# noise: regressor+SMPL is identical eager fp32 code in the non-aoti modes; their ratios span "
          f"{min(control):.2f}x-{max(control):.2f}x (1.00x on a quiet machine); "
          f"load average now {os.getloadavg()[0]:.1f}")


def _run_aoti(args: argparse.Namespace, vibe: Path, device: torch.device, models: dict) -> None:
    """Speed table with the AOTInductor row per batch size, joints in mm, warm start."""
    def models_for(b: int) -> dict:
        out = {**models, "bf16 aoti backbone": _aoti(vibe, device, b, args.cache, head=False),
               "bf16 aoti": _aoti(vibe, device, b, args.cache),
               "fp32 aoti": _aoti(vibe, device, b, args.cache, precision="fp32")}
        if args.variants:
            out.update({name: _aoti(vibe, device, b, args.cache, **opts) for name, opts in VARIANTS.items()})
        return out

    _table(args, models_for, device)
    _warm_start(vibe, device, args.batch_sizes[-1], args.cache)
    print(f"# peak RSS {_peak_rss_mib():.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=16, help="frames per timed measurement (≥ 1 batch)")
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[8, 32])
    parser.add_argument("--repeats", type=int, default=2, help="round-robin rounds (best is kept)")
    parser.add_argument("--compile", action="store_true",
                        help="also time a torch.compile'd bf16 backbone (compilation takes minutes)")
    parser.add_argument("--aoti", action="store_true",
                        help="also time the bf16 backbone from its AOTInductor artefact (built once into --cache: minutes)")
    parser.add_argument("--variants", action="store_true",
                        help="with --aoti: also the bf16 precision variants of the backbone (VARIANTS; one build each)")
    parser.add_argument("--cache", type=Path, default=BENCH_CACHE, help="AOTInductor artefact folder")
    parser.add_argument("--warm-start-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warm_start_child is not None:
        _warm_start_child(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
