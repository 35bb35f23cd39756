"""Save the README's screenshot: the dashboard at 120x36 on a real, short training run (or on a log you name).

    .venv/bin/python docs/make_screenshot.py [--steps 400] [--lr 1.5e-3] [--out docs/screenshot.svg]
    .venv/bin/python docs/make_screenshot.py --log sessions/SOME-RUN.jsonl
    .venv/bin/python docs/make_screenshot.py --keep sessions     # train, keep the log, shoot it

Without ``--log`` it trains a 64-wide, 4-block model (28 ternary layers) on the embedded corpus, headless,
halves the LR from the "dashboard" halfway (a logged intervention), then replays the finished log at its
end and saves the "All" tab as an SVG: what ``bitnet-tui replay RUN --end`` shows. The same log as a picture
to share: ``bitnet-tui plot RUN -o run.png`` (needs ``pip install -e '.[plot]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitnet_tui.app.dashboard.app import make_app  # noqa: E402
from bitnet_tui.session.control import commands as C  # noqa: E402
from bitnet_tui.session.log.events import StepDone  # noqa: E402

SIZE = (120, 36)


def train(steps: int, lr: float, sessions: str) -> Path:
    """A real run, logged under ``sessions``; the LR is halved once at ``steps // 2``."""
    from bitnet_tui.app.runs.build import prepare_run

    argv = ["bitnet-tui", "run", "--hidden", "64", "--layers", "4", "--steps", str(steps), "--lr", str(lr)]
    run = prepare_run({"hidden": 64, "layers": 4, "steps": steps, "lr": lr, "eval_every": 25,
                       "weights_every": 25}, sessions=sessions, argv=argv)
    halved = threading.Event()

    def watch(e: object) -> None:
        if isinstance(e, StepDone) and e.step >= steps // 2 and not halved.is_set():
            halved.set()
            run.send(C.ScaleLR(factor=0.5, source="dashboard"))

    run.subscribe(watch)
    run.run()
    return Path(run.session_path)


async def shoot(log: Path, out: Path) -> None:
    app = make_app("replay", session_path=log, start_at="end")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        app.refresh_panels(force=True)
        await pilot.pause(0.5)
        app.save_screenshot(filename=out.name, path=str(out.parent.resolve()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--log", type=Path, help="a session log to show instead of training one")
    ap.add_argument("--keep", type=Path, help="train into this folder and keep the log (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshot.svg"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        log = a.log if a.log is not None else train(a.steps, a.lr, str(a.keep or d))
        asyncio.run(shoot(log, a.out))
    print(f"saved {a.out} from {log}")


if __name__ == "__main__":
    main()
