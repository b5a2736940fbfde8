"""Run the robustness table and print it as markdown: case · exit code · code · message · result.

    .venv/bin/python -m tests.robustness.report [-k SUBSTRING ...] [--keep DIR]

Every row comes from a real run (tests/robustness/runner.py); CASE in a message is the case's
folder; "s" is the wall time, "peak MiB" the largest peak RSS (VmHWM, sampled) of any process of
the run; the last column says "ok" or the first broken rule. Exit status: 0 when every selected
case passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tests.robustness.cases import CASES
from tests.robustness.inputs import Assets
from tests.robustness.runner import run_case, verify


def _cell(text: object, limit: int = 160) -> str:
    s = "—" if text in (None, "") else str(text)
    s = s.replace("|", "\\|").replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-k", action="append", default=[], help="only cases whose id contains this (repeatable)")
    p.add_argument("--keep", metavar="DIR",
                   help="build and run in DIR and keep it (default: a temp folder, removed)")
    args = p.parse_args(argv)
    cases = [c for c in CASES if not args.k or any(k in c.id for k in args.k)]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vibe-robustness-"))
    assets = Assets(root / "_assets")
    rows, failed, t0 = [], 0, time.monotonic()
    try:
        for case in cases:
            out = run_case(case, assets, root / "_runs")
            broken = verify(case, out)
            failed += bool(broken)
            rc = "raised" if out.rc is None and case.exit is None else out.rc
            code = out.code if out.code else (f"(done {out.status})" if out.status else None)
            message = out.message.replace(str(root / "_runs" / case.id / "case"), "CASE")
            verdict = "ok" if not broken else _cell(broken[0], 140)
            rows.append(f"| {case.id} | {_cell(case.what, 90)} | {rc} | {_cell(code)} | "
                        f"{_cell(message)} | {out.wall_s:.1f} | {out.peak_rss_mib:.0f} | {verdict} |")
            print(f"{case.id}: {'ok' if not broken else 'FAIL ' + broken[0]}", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("| case | input | exit code | code | message | s | peak MiB | result |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{len(cases) - failed}/{len(cases)} cases pass ({time.monotonic() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
