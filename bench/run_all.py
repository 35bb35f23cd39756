"""Run every benchmark in bench/ and tabulate the last line each one prints.

    .venv/bin/python bench/run_all.py [--timeout 300] [--only NAME ...]

Each ``bench/*.py`` but this one (and any ``_*.py`` helper) runs with its defaults in its own subprocess,
one after another (they would only slow each other down side by side). Each prints its result as a ratio
on its last line; the table shows that line and the script's wall time. A script that fails or times out
shows its error in place of the line, and run_all exits non-zero.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=300, help="seconds per script")
    p.add_argument("--show", action="store_true", help="also print each script's full output as it finishes")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these scripts (e.g. bitlinear scaling)")
    args = p.parse_args()

    scripts = sorted(s for s in HERE.glob("*.py") if s.name != Path(__file__).name and not s.name.startswith("_"))
    if args.only:
        wanted = {n.removesuffix(".py") for n in args.only}
        scripts = [s for s in scripts if s.stem in wanted]
    rows: list[tuple[str, str, float]] = []
    failed = False
    for s in scripts:
        print(f"running {s.name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            res = subprocess.run([sys.executable, str(s)], capture_output=True, text=True, timeout=args.timeout,
                                 cwd=HERE.parent)
            line = last_line(res.stdout)
            if args.show:
                print(res.stdout + res.stderr, flush=True)
            if res.returncode != 0:
                failed = True
                line = f"FAILED (exit {res.returncode}): {last_line(res.stderr) or line}"
        except subprocess.TimeoutExpired:
            failed = True
            line = f"TIMED OUT after {args.timeout:g} s"
        rows.append((s.name, line, time.perf_counter() - t0))

    w = max([len("script")] + [len(r[0]) for r in rows])
    print(f"{'script':<{w}}  {'wall s':>7}  last line")
    for name, line, wall in rows:
        print(f"{name:<{w}}  {wall:7.1f}  {line}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
