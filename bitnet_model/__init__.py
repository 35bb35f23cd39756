"""The BitNet b1.58 training engine behind bitnet-tui.

Model, data, schedule, trainer, diagnostics and the collapse detector. It never
imports textual or rich: the headless run, the sweep and the tests use it directly.
"""

__version__ = "0.1.0"
