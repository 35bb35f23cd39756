"""Startup of a viewer command: ``bitnet-tui sessions`` against ``python -c pass``, side by side.

    .venv/bin/python bench/startup.py [--rounds 15]

Both run as fresh processes, alternating, ``--rounds`` times each, on an empty sessions directory: the
difference is what the CLI costs to start (Typer, Rich, the log reader; never torch). Best and median wall
times are printed; the target is ``sessions`` under 0.35 s on this machine. Last line: the ratio of the best
times (and the absolute best of ``sessions``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "sessions").mkdir()
        cli = [sys.executable, "-m", "bitnet_tui", "sessions", "--sessions-dir", str(Path(tmp) / "sessions")]
        bare = [sys.executable, "-c", "pass"]
        timed(cli, str(ROOT)), timed(bare, str(ROOT))  # warm the file cache
        t: dict[str, list[float]] = {"sessions": [], "python -c pass": []}
        for _ in range(args.rounds):
            t["sessions"].append(timed(cli, str(ROOT)))
            t["python -c pass"].append(timed(bare, str(ROOT)))
    for name, ts in t.items():
        print(f"{name:16s} best {min(ts) * 1e3:.0f} ms, median {statistics.median(ts) * 1e3:.0f} ms over {len(ts)}")
    best = min(t["sessions"])
    print(f"startup: bitnet-tui sessions / python -c pass: {best / min(t['python -c pass']):.1f}x "
          f"({best:.2f} s; target < 0.35 s: {'met' if best < 0.35 else 'NOT met'})")


if __name__ == "__main__":
    main()
