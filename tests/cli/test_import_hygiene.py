"""Only training needs torch: every viewer command starts without importing it (or numpy, or tokenizers).

Each command runs in a fresh interpreter, through the real entry point, on a real log; afterwards the
interpreter reports which heavy modules it loaded. Dashboards are built but not run (no terminal here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = str(ROOT / "tests" / "fixtures" / "collapse.jsonl")
HEAVY = ("torch", "numpy", "tokenizers")

PROBE = """
import json, sys
if {no_ui}:
    import textual.app
    textual.app.App.run = lambda self, *a, **k: None
sys.argv = ["bitnet-tui", *json.loads(sys.argv[1])]
from bitnet_tui.app.cli.main import main
try:
    main()
except SystemExit as e:
    code = e.code
else:
    code = 0
print("\\n" + json.dumps({{"code": code, "heavy": sorted(m for m in {heavy} if m in sys.modules)}}))
"""


@pytest.mark.parametrize("args", [
    ["--version"], ["--help"], ["-h"], ["sessions", "--sessions-dir", "{tmp}"], ["sessions", "--json"],
    ["summary", FIXTURE], ["summary", FIXTURE, "--json"], ["compare", FIXTURE, FIXTURE], ["diagnose", FIXTURE],
    ["replay", FIXTURE], ["watch", FIXTURE], ["attach", FIXTURE], ["ctl", FIXTURE, "ping"],
    ["run", "--help"], ["sweep", "--help"], ["export", "--help"], ["diagnose", "--help"],
    ["export", FIXTURE, "--to", "csv", "{tmp}/csv"], ["serve", "--help"], ["serve", FIXTURE, "--steer"],
], ids=lambda a: " ".join(a)[:40])
def test_a_viewer_command_never_imports_torch(args, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    no_ui = args[0] in ("replay", "watch", "attach")
    code = PROBE.format(no_ui=no_ui, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], (args, report, out.stderr[-500:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]


def test_the_model_and_the_instrument_never_import_the_ui_nor_the_instrument_the_model_package_above_it():
    code = ("import sys, bitnet_model.train.trainer, bitnet_tui.instrument.monitor, bitnet_tui.app.runs.build, "
            "bitnet_tui.session.analysis.diagnose\n"
            "print(sorted(m for m in ('textual', 'rich', 'typer', 'bitnet_tui.app.dashboard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_importing_the_model_or_the_library_loads_no_ui_and_changes_no_environment():
    code = ("import os, sys; before = dict(os.environ); import bitnet_model, bitnet_model.train.trainer, bitnet_tui\n"
            "from bitnet_tui import Monitor, MonitorConfig\n"
            "print('textual' in sys.modules, 'bitnet_tui.instrument' in sys.modules and 'textual' in sys.modules, "
            "dict(os.environ) == before)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
    assert out.stdout.split() == ["False", "False", "True"], out.stderr[-2000:]


def test_no_module_imports_another_modules_private_names():
    import ast

    bad = []
    for path in sorted((ROOT / "bitnet_model").rglob("*.py")) + sorted((ROOT / "bitnet_tui").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("bitnet_model",
                                                                                         "bitnet_tui")):
                bad += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert bad == []


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:]
