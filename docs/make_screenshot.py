"""Save an SVG screenshot of the dashboard on a real, short training run (used in the README).

    .venv/bin/python docs/make_screenshot.py [--steps 400] [--lr 1.5e-3] [--out docs/screenshot.svg]

Trains a 64-wide model on the embedded corpus with the dashboard driven headless at 160x48,
halves the LR once on the way (an intervention), and saves the screen when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitnet_model.run.build import prepare_run  # noqa: E402  # noqa: E402
from bitnet_tui.dashboard.app import make_app  # noqa: E402  # noqa: E402


async def main(steps: int, lr: float, out: Path) -> None:
    with tempfile.TemporaryDirectory() as d:
        prep = prepare_run({"hidden": 64, "steps": steps, "lr": lr, "eval_every": 25}, sessions=d,
                           argv=["bitnet-tui", "run", "--hidden", "64", "--steps", str(steps), "--lr", str(lr)])
        tr = prep.trainer
        app = make_app(mode="live", trainer=tr, session_path=prep.path)
        async with app.run_test(size=(160, 48)) as pilot:
            halved = False
            while tr.last_end is None:
                await asyncio.sleep(0.5)
                if not halved and tr.step >= steps // 2:
                    await pilot.press("left_square_bracket")
                    halved = True
            await asyncio.sleep(1.0)
            await pilot.pause()
            app.save_screenshot(filename=out.name, path=str(out.parent))
        prep.writer.close()
    print(f"saved {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--out", type=Path, default=Path("docs/screenshot.svg"))
    a = ap.parse_args()
    asyncio.run(main(a.steps, a.lr, a.out))
