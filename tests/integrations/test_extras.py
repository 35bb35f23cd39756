"""The integrations are optional extras: importing the package loads no framework (nor torch), and a module
whose framework is missing says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_integrations_package_imports_no_framework():
    res = run("import sys, bitnet_tui.integrations\n"
              "heavy = ('torch', 'transformers', 'lightning', 'tensorboard', 'trackio')\n"
              "loaded = [m for m in heavy if m in sys.modules]\n"
              "assert not loaded, loaded")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(("module", "framework", "extra"), [("hf", "transformers", "hf"),
                                                            ("lightning", "lightning", "lightning")])
def test_a_missing_framework_names_the_extra(module, framework, extra):
    res = run(f"import sys; sys.modules[{framework!r}] = None  # as if it were not installed\n"
              f"import bitnet_tui.integrations.{module}")
    assert res.returncode != 0
    assert f"pip install 'bitnet-tui[{extra}]'" in res.stderr.splitlines()[-1]
