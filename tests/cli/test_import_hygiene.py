"""The engine never imports the UI: the headless run, the sweep and the tests use it without textual or rich."""

import subprocess
import sys


def test_bitnet_model_imports_no_ui():
    code = (
        "import sys, bitnet_model, bitnet_model.train.trainer, bitnet_model.log.reader, bitnet_model.analysis.summary, "
        "bitnet_model.train.checkpoint, bitnet_model.nn.model, bitnet_model.data.dataset\n"
        "bad = [m for m in ('textual', 'rich') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
