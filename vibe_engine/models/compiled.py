"""Compiled-artefact cache: a module compiled once by AOTInductor and reused across runs.

Why AOTInductor (``torch._inductor.aoti_compile_and_package``, loaded like ``aoti_load_package``): a
``torch.compile`` warm start still traces the model with Dynamo on every run (seconds for a
ResNet-50) even when Inductor's on-disk caches hit, whereas loading an AOTInductor package is a
``dlopen`` plus reading the constants (≈0.1 s; benchmarks/generator.py measures both).

One artefact per (what, device type, dtype, memory format, batch) lives in the cache folder as
``<name>.pt2`` (the package) and ``<name>.json`` (its record, written last). The record holds the
key and what the package depends on: torch version, CPU instruction set (generated code uses the
build machine's vector ISA), a SHA-256 of the weights that were compiled in as constants, and the
package's own SHA-256. :func:`load_or_build` checks all of them: a stale record (other torch,
other weights, other CPU) or a corrupt package (hash mismatch, load failure) is rebuilt when
``build`` is true, else bypassed; both cases return the reason so the caller can warn. A build
that fails leaves nothing behind and the caller runs eager.

The package is fixed to its batch size; callers pad smaller batches (VibeGenerator does).

Weight re-packing at load: freezing stores each convolution's weight pre-packed in oneDNN's blocked
layout inside the package's shared library, and the loaded model reads it from that read-only
file mapping. Measured on a 2-core AVX-512/AMX CPU, that runs the ResNet-50 backbone ≈1.3× slower
than ``torch.compile`` of the same graph, with the same oneDNN kernels and formats (oneDNN verbose).
Re-packing the same weights in process (``torch.ops.mkldnn._reorder_convolution_weight`` of the
module's own weight, swapped in with ``update_constant_buffer``) gives the package the same speed
and the bitwise same outputs. The build derives that plan (package constant → conv weight, its
arguments and input shape), checks it bitwise against the package as built on the example, and
keeps it in the record (``repack``); a plan that does not reproduce the package exactly is dropped
(the package then runs as built). See docs/engine-protocol.md.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import re
import zipfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vibe_blender.core.atomic import atomic_path, atomic_write

log = logging.getLogger(__name__)

#: Bumped when the record format or the build recipe changes (old artefacts are then stale).
ARTEFACT_FORMAT = 2
#: Environment variable naming the cache folder (default: ``$XDG_CACHE_HOME/vibe-mocap/compiled``).
CACHE_ENV = "VIBE_ENGINE_COMPILE_CACHE"
#: Inductor settings of the build: frozen weights (constant folding, weight prepacking).
INDUCTOR_CONFIGS = {"freezing": True}
_HASH_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$VIBE_ENGINE_COMPILE_CACHE``, else ``$XDG_CACHE_HOME`` (or ~/.cache) / vibe-mocap/compiled."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vibe-mocap" / "compiled"


def cpu_signature() -> str:
    """The host's CPU identity as far as generated code cares: arch, torch's capability, model."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    return f"{platform.machine()}|{torch.backends.cpu.get_cpu_capability()}|{model}"


#: Warning for ``--precision bf16`` on a CPU without native bfloat16 (measured on such a CPU, a
#: 2-core Xeon with AVX-512 but no AVX512-BF16/AMX, ``benchmarks/generator.py --aoti``: bf16 eager
#: 0.68-0.92x and bf16 compiled 0.74-0.95x the fp32 NCHW forward, against fp32 channels-last 1.25-1.66x
#: and fp32 compiled 1.65-2.89x).
EMULATED_BF16 = ("--precision bf16: this CPU has no native bfloat16 (no AVX512-BF16 or AMX), so bf16 runs "
                 "emulated and slower than fp32; use --precision fp32 (the default)")


def bf16_is_emulated(device: str, precision: str) -> bool:
    """Whether ``precision`` on ``device`` means bfloat16 without hardware support: bf16 on a CPU
    without AVX512-BF16 or AMX tiles (as PyTorch detects them)."""
    if precision != "bf16" or device != "cpu":
        return False
    cpu = torch.cpu
    return not (cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())


def weights_sha256(module: nn.Module) -> str:
    """SHA-256 over the module's state dict (names, dtypes, shapes, bytes), in key order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ArtefactKey:
    """What selects an artefact file (``name``) and what its record must match (``expected``)."""

    what: str
    device: str
    dtype: str
    channels_last: bool
    batch: int

    @property
    def name(self) -> str:
        layout = "cl" if self.channels_last else "nchw"
        return f"{self.what}-{self.device}-{self.dtype.replace('torch.', '')}-{layout}-b{self.batch}"

    def expected(self, weights: str) -> dict[str, Any]:
        """The record a valid artefact for this key and these weights carries."""
        return {"format": ARTEFACT_FORMAT, **dataclasses.asdict(self), "torch": torch.__version__,
                "cpu": cpu_signature() if self.device == "cpu" else "", "weights_sha256": weights}


@dataclass
class Prepared:
    """Outcome of :func:`load_or_build`: ``runner`` (None → run eager), ``state`` ("loaded",
    "built", "eager"), ``reason`` (why an artefact was rebuilt or bypassed; "" when all went well),
    ``seconds`` spent, ``path`` of the package."""

    runner: Callable[..., Any] | None
    state: str
    reason: str
    seconds: float
    path: Path


class PackageRunner:
    """A loaded AOTInductor package: ``runner(*inputs)`` → its output (a tensor), or the list of
    its outputs when there are several (e.g. models/head.py's).

    Talks to ``torch._C._aoti.AOTIModelPackageLoader`` directly (what ``aoti_load_package``
    wraps), so a warm start does not import ``torch._inductor`` (seconds on a loaded CPU).
    With ``module`` and a ``repack`` plan (:func:`repack_plan`), the plan's conv weights are
    re-packed in process from ``module``'s parameters and replace the package's copies.
    """

    def __init__(self, pt2: Path, module: nn.Module | None = None,
                 repack: list[dict[str, Any]] | None = None) -> None:
        self._loader = torch._C._aoti.AOTIModelPackageLoader(str(pt2), "model", False, 1, -1)
        self._packed: dict[str, torch.Tensor] = {}  # user-managed constants: kept alive here
        if module is not None and repack:
            self._packed = packed_weights(module, repack)
            self._loader.update_constant_buffer(self._packed, False, False, True)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        outputs = self._loader.boxed_run(list(inputs))
        return outputs[0] if len(outputs) == 1 else outputs


_CONV_CALL = re.compile(r"aoti_torch_cpu_mkldnn__convolution_pointwise\w*\(([^;]*)\);")
_CONST_FIELD = re.compile(r'constants_info_\[(\d+)\]\.(name|original_fqn|shape) = (?:"([\w.]*)"|\{([^}]*)\});')
_PAIR = r"std::array<int64_t, 2>\{(-?\d+)L, (-?\d+)L\}\.cbegin\(\), 2"
_CONV_ARGS = re.compile(rf"\b(_frozen_param\d+)\b.*?{_PAIR}, {_PAIR}, {_PAIR}, (\d+)L")


def _constants(source: str) -> dict[str, dict[str, Any]]:
    """The package's constants by C++ name: their ``original_fqn`` and ``shape``."""
    by_index: dict[str, dict[str, Any]] = {}
    for index, field, text, numbers in _CONST_FIELD.findall(source):
        value = [int(n.rstrip("L")) for n in numbers.split(",") if n.strip()] if field == "shape" else text
        by_index.setdefault(index, {})[field] = value
    return {c["name"]: c for c in by_index.values() if "name" in c}


def repack_plan(module: nn.Module, example: tuple[torch.Tensor, ...], pt2: Path) -> list[dict[str, Any]]:
    """For each oneDNN convolution of the package ``pt2``: which package constant holds its packed
    weight (``constant``), the ``module`` weight it was packed from (``weight``, a parameter name),
    the conv arguments and the conv's input shape on ``example``. A call is matched to the
    ``nn.Conv2d`` whose bias it reads, else to the first unused one (in execution order) with the
    same weight shape and arguments. ``[]`` when a call matches none (e.g. a BatchNorm that
    Inductor folded itself: that weight is no parameter of ``module``); :func:`_checked_plan`
    verifies a plan bitwise."""
    with zipfile.ZipFile(pt2) as archive:
        cpp = [n for n in archive.namelist() if n.endswith(".wrapper.cpp")]
        if len(cpp) != 1:
            return []
        source = archive.read(cpp[0]).decode("utf-8", "replace")
    constants = _constants(source)
    convs = {name: m for name, m in module.named_modules() if isinstance(m, nn.Conv2d)}
    shapes: dict[str, list[int]] = {}  # insertion order = execution order

    def record(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            shapes.setdefault(name, list(inputs[0].shape))
        return hook
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in convs.items()]
    try:
        with torch.no_grad():
            module(*example)
    finally:
        for h in hooks:
            h.remove()
    plan, used = [], set()
    for call in _CONV_CALL.finditer(source):
        args = _CONV_ARGS.search(call.group(1))
        if args is None:
            return []
        constant, numbers = args.group(1), [int(n) for n in args.groups()[1:]]
        key = (numbers[0:2], numbers[2:4], numbers[4:6], numbers[6])
        bias = re.search(r"temporary_reference\((\w+)\.get\(\)\)", call.group(1))
        owner = constants.get(bias.group(1), {}).get("original_fqn", "") if bias else ""
        candidates = [n for n in shapes if n not in used and (
            list(convs[n].padding), list(convs[n].stride), list(convs[n].dilation), convs[n].groups) == key
            and list(convs[n].weight.shape) == constants.get(constant, {}).get("shape")]
        by_bias = owner[: -len(".bias")] if owner.endswith(".bias") else None
        name = by_bias if by_bias in candidates else (candidates[0] if candidates else None)
        if name is None:
            return []
        used.add(name)
        plan.append({"constant": constant, "weight": f"{name}.weight", "padding": key[0], "stride": key[1],
                     "dilation": key[2], "groups": key[3], "input_size": shapes[name]})
    return plan


def packed_weights(module: nn.Module, plan: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The plan's constants, packed in process from ``module``'s weights (what freezing does)."""
    params = dict(module.named_parameters())
    with torch.no_grad():
        return {e["constant"]: torch.ops.mkldnn._reorder_convolution_weight(
            params[e["weight"]].detach(), e["padding"], e["stride"], e["dilation"], e["groups"], e["input_size"])
            for e in plan}


def _checked_plan(module: nn.Module, example: tuple[torch.Tensor, ...], pt2: Path) -> list[dict[str, Any]]:
    """:func:`repack_plan`, kept only when the re-packed package reproduces the package as built
    bitwise on ``example`` (else ``[]``: the package runs as built)."""
    try:
        plan = repack_plan(module, example, pt2)
        if not plan:
            return []
        with torch.no_grad():
            want = PackageRunner(pt2)(*example)
            got = PackageRunner(pt2, module, plan)(*example)
        want, got = ([want], [got]) if isinstance(want, torch.Tensor) else (want, got)
        if all(torch.equal(w, g) for w, g in zip(want, got, strict=True)):
            return plan
        log.warning("re-packed weights of %s differ from the package; it runs as built", pt2.name)
    except Exception as exc:  # noqa: BLE001 - the plan is an optimisation: without it the package still runs
        log.warning("no weight re-packing for %s: %s", pt2.name, exc)
    return []


def read_repack(record_path: Path) -> list[dict[str, Any]]:
    """The record's weight re-packing plan (``[]`` when it has none)."""
    plan = json.loads(record_path.read_text(encoding="utf-8")).get("repack", [])
    return plan if isinstance(plan, list) else []


def check_artefact(pt2: Path, record_path: Path, expected: dict[str, Any]) -> str:
    """"" when the package and its record are valid for ``expected``, else the reason."""
    if not pt2.is_file() or not record_path.is_file():
        return "missing"
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable record ({type(exc).__name__})"
    if not isinstance(record, dict):
        return "unreadable record (not an object)"
    for field, want in expected.items():
        if record.get(field) != want:
            return f"stale: built for {field}={record.get(field)!r}, this run needs {want!r}"
    if record.get("package_sha256") != file_sha256(pt2):
        return "corrupt: the package does not match its recorded SHA-256"
    return ""


def build_artefact(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], pt2: Path,
                   record_path: Path, expected: dict[str, Any]) -> None:
    """Export ``module`` on ``example`` (one input tensor, or a tuple of them), compile it with
    AOTInductor into ``pt2`` and write its record (both atomically; the record last). Minutes on a
    2-core CPU for a ResNet-50."""
    import torch._inductor  # the compiler: imported only to build

    pt2.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    example = example if isinstance(example, tuple) else (example,)
    with torch.inference_mode(False), torch.no_grad():
        program = torch.export.export(module, example)

        with atomic_path(pt2) as tmp:
            torch._inductor.aoti_compile_and_package(program, package_path=str(tmp),
                                                     inductor_configs=dict(INDUCTOR_CONFIGS))
    record = {**expected, "package_sha256": file_sha256(pt2), "repack": _checked_plan(module, example, pt2),
              "build_seconds": round(time.perf_counter() - start, 1)}
    with atomic_write(record_path) as f:
        f.write(json.dumps(record, indent=1).encode("utf-8"))


def load_or_build(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], key: ArtefactKey, *,
                  cache_dir: Path | None = None, build: bool = True,
                  on_build: Callable[[str], None] | None = None) -> Prepared:
    """The compiled ``module`` for inputs shaped like ``example`` (the artefact of ``key``; a tuple
    for a module of several inputs).

    Loads a valid artefact; otherwise builds one (``build``; ``on_build(reason)`` is called first,
    e.g. to report progress) or bypasses it. Never raises for a compile/load failure: the result's
    ``runner`` is then None (run eager) and ``reason`` says why.
    """
    start = time.perf_counter()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    pt2, record_path = folder / f"{key.name}.pt2", folder / f"{key.name}.json"
    expected = key.expected(weights_sha256(module))
    reason = check_artefact(pt2, record_path, expected)
    if not reason:
        try:
            return Prepared(PackageRunner(pt2, module, read_repack(record_path)), "loaded", "",
                            time.perf_counter() - start, pt2)
        except Exception as exc:  # noqa: BLE001 - any loader failure means the artefact is unusable
            reason = f"corrupt: cannot load the package ({type(exc).__name__}: {str(exc)[:120]})"
    if not build:
        return Prepared(None, "eager", reason, time.perf_counter() - start, pt2)
    if on_build is not None:
        on_build(reason)
    try:
        build_artefact(module, example, pt2, record_path, expected)
        runner = PackageRunner(pt2, module, read_repack(record_path))
    except Exception as exc:  # noqa: BLE001 - no compiler, unsupported op, full disk…: run eager
        log.warning("AOTInductor build of %s failed: %s", key.name, exc)
        for p in (record_path, pt2):  # ours: never leave a half-valid artefact behind
            p.unlink(missing_ok=True)
        return Prepared(None, "eager", f"{reason}; build failed ({type(exc).__name__}: {str(exc)[:160]})",
                        time.perf_counter() - start, pt2)
    return Prepared(runner, "built", "" if reason == "missing" else reason, time.perf_counter() - start, pt2)
