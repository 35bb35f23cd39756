"""Every key and palette command of the dashboard, in one place.

The footer shows a key only where it works in this mode (live, replay, watch): the app's ``check_action``
hides the rest, so replay and watch never list controls they would ignore. Keys the footer has no room for
at 80 columns are in the command palette (``ctrl+p``), with every other action, and in Textual's key panel.
"""

from __future__ import annotations

from textual.binding import Binding

from bitnet_tui.session.control import commands as C

LR_GROUP = Binding.Group("LR×½ ×2")
SPEED_GROUP = Binding.Group("speed")
MARK_GROUP = Binding.Group("⚠/⚙")

BINDINGS = [
    Binding("l", "set_lr", "LR"),
    Binding("left_square_bracket", "scale_lr(0.5)", "LR×½", key_display="[", group=LR_GROUP),
    Binding("right_square_bracket", "scale_lr(2.0)", "LR×2", key_display="]", group=LR_GROUP),
    Binding("u", "undo_lr", "Undo"),
    Binding("p,space", "toggle_pause('pause')", "Pause", key_display="p"),
    Binding("p,space", "toggle_pause('resume')", "Resume", key_display="p"),  # the one that applies is shown
    Binding("c", "checkpoint", "Ckpt"),
    Binding("e", "eval_now", "Eval", show=False),
    Binding("r", "rewind", "Rewind", show=False),
    Binding("D", "decouple", "Decouple", show=False),
    Binding("W", "set_wd", "WD", show=False),
    Binding("Z", "no_decay", "No decay on norms", show=False),
    Binding("U", "undo_optim", "Undo optim", show=False),
    Binding("1", "speed('1')", "1×", group=SPEED_GROUP),
    Binding("2", "speed('2')", "10×", group=SPEED_GROUP),
    Binding("3", "speed('3')", "100×", group=SPEED_GROUP),
    Binding("0", "speed('0')", "max", group=SPEED_GROUP),
    Binding("home", "to_start", "Start", show=False),
    Binding("end", "to_end", "End", show=False),
    Binding("g", "goto_step", "Go to"),
    Binding("n", "next_mark", "next alert or intervention", key_display="n", group=MARK_GROUP),
    Binding("N", "prev_mark", "previous alert or intervention", key_display="N", group=MARK_GROUP),
    Binding("v", "next_panel", "Panel"),
    Binding("y", "toggle_log", "Log", show=False),
    Binding("s", "smoothing", "EMA", show=False),
    Binding("w", "weights_map", "Map", show=False),
    Binding("question_mark", "keys", "Keys", key_display="?", show=False),
    Binding("q", "quit_run", "Quit"),
    Binding("ctrl+c", "interrupt", "Interrupt", show=False, priority=True),
]

SENDS: dict[str, type[C.Command]] = {"undo_lr": C.UndoLR, "checkpoint": C.CheckpointNow, "eval_now": C.EvalNow}
"""Dashboard actions that are one command each (the command's title names them in the palette)."""

VIEW_ACTIONS = frozenset({"next_panel", "show_panel", "toggle_log", "smoothing", "weights_map", "next_mark",
                          "prev_mark", "keys"})
"""Actions that change what is shown, available in every mode."""

PALETTE = (
    # (action, args, title, help)
    ("set_lr", (), C.SetLR.title, "l: type a new LR; it holds from now on, never exceeded later"),
    ("scale_lr", (0.5,), "Halve learning rate", "[: LR × 0.5 (the same rule as a typed LR)"),
    ("scale_lr", (2.0,), "Double learning rate", "]: LR × 2 (the same rule as a typed LR)"),
    ("undo_lr", (), C.UndoLR.title, "u: restore the LR rule before the last change"),
    ("toggle_pause", (), "Pause / resume", "p or space: pause or resume training (replay: playback)"),
    ("checkpoint", (), C.CheckpointNow.title, "c: save a checkpoint at the next step (kept)"),
    ("eval_now", (), C.EvalNow.title, "e: run an eval at the next step"),
    ("decouple", (), C.Decouple.title, "D: Adam's coupled L2 becomes AdamW's decoupled decay, at the next step"),
    ("set_wd", (), C.SetWD.title, "W: type the weight decay of the decayed groups (0 stops decay)"),
    ("no_decay", (), C.NoDecayOn.title, "Z: stop weight decay on norm gains and embeddings"),
    ("undo_optim", (), C.UndoOptim.title, "U: restore the optimizer rule before the last D, W or Z"),
    ("rewind", (), "Rewind: fork from a checkpoint with a new LR",
     "r: stop this run and continue it from one of its checkpoints, in a new linked session"),
    ("speed", ("1",), "Replay speed 1×", "1: play back at logged speed"),
    ("speed", ("2",), "Replay speed 10×", "2: play back 10× faster"),
    ("speed", ("3",), "Replay speed 100×", "3: play back 100× faster"),
    ("speed", ("0",), "Replay speed max", "0: play back as fast as possible"),
    ("to_start", (), "Jump to start", "home: replay from the first event"),
    ("to_end", (), "Jump to end", "end: show the whole log"),
    ("goto_step", (), "Go to step", "g: seek the replay to a step"),
    ("next_mark", (), "Next alert or intervention", "n: replay seeks there; live and watch highlight it"),
    ("prev_mark", (), "Previous alert or intervention", "N: replay seeks there; live and watch highlight it"),
    ("next_panel", (), "Next panel", "v: show the next panel (tabs)"),
    ("toggle_log", (), "Log scale on every plot", "y: switch every plot's y axis between linear and log"),
    ("smoothing", (), "Loss smoothing (EMA)", "s: cycle the loss and grad-norm EMA: off, 0.9, 0.99, 0.999"),
    ("weights_map", (), "Weights map: flip & zero ↔ scale & RMS",
     "w: what the per-layer heatmap shows"),
    ("keys", (), "Keys", "?: every key of this mode, one line each (Esc or q closes)"),
    ("quit_run", (), "Quit", "q: live, stop the run and quit (attached: detach)"),
    ("interrupt", (), "Interrupt (Ctrl+C)",
     "ctrl+c: live, end the run now (checkpoint, run_ended interrupted, exit 130); attached: detach"),
)
