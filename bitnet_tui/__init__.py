"""bitnet-tui: a terminal instrument for watching BitNet b1.58 training go wrong, and fixing it while it runs.

The layers, top to bottom (``docs/design.md``; import-linter's contracts in ``pyproject.toml`` enforce them):

* :mod:`bitnet_tui.app`: the command line, the dashboard, the headless view, our runs' lifecycle;
* :mod:`bitnet_tui.integrations`: the Monitor inside Hugging Face's and Lightning's trainers;
* :mod:`bitnet_tui.instrument`: the Monitor (torch): evals, snapshots, steering, the control server, sinks;
* :mod:`bitnet_model`: the BitNet b1.58 model and our way of training it (torch);
* :mod:`bitnet_tui.session`: torch-free: the session log, its analysis (detector, verdicts, diagnose), the
  command protocol and client, knobs, errors and safe files. Every viewer command lives on it alone.

Importing this package imports nothing else and changes nothing in the process.
"""

from bitnet_tui.version import __version__

__all__ = ["Monitor", "MonitorConfig", "__version__"]


def __getattr__(name: str):
    """``from bitnet_tui import Monitor`` imports torch only when asked for (the viewer commands never are)."""
    if name in ("Monitor", "MonitorConfig"):
        from bitnet_tui.instrument import monitor

        return getattr(monitor, name)
    raise AttributeError(f"module 'bitnet_tui' has no attribute {name!r}")
