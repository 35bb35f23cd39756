"""What to try for a cause, keyed by its code, in the terms of whoever trains: the live command first (while the
run serves its control socket), then a new run of ours, or the change in a user's own script, Hugging Face
``TrainingArguments`` or Lightning ``configure_optimizers``. A user's loop is never told our run flags."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bitnet_tui.session.text import fmt_num


@dataclass(frozen=True)
class Fix:
    what: str
    """What it changes, in a few words."""
    live: str
    """The ``bitnet-tui ctl SESSION ...`` command that applies it in the running process ("" if none)."""
    add: tuple[str, ...]
    """Flags a new run of ours adds."""
    drop: tuple[str, ...]
    """Flags (and their values) it drops from the recorded command line."""
    code: str
    """The change in a plain PyTorch loop."""
    hf: str
    """The change for a Hugging Face Trainer."""
    lightning: str
    """The change for a Lightning module."""


ADAMW = "torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WD)"
GROUPS = ('torch.optim.AdamW([{"params": [p for n, p in model.named_parameters() if p.ndim >= 2 and "emb" not in n]}, '
          '{"params": [p for n, p in model.named_parameters() if p.ndim < 2 or "emb" in n], "weight_decay": 0.0}], '
          'lr=LR, weight_decay=WD)')
FIXES = {
    "coupled-l2": Fix("decoupled decay (AdamW)", "decouple", ("--optimizer", "adamw"), ("--optimizer",),
                      f"{ADAMW} in place of torch.optim.Adam(..., weight_decay=WD)",
                      'TrainingArguments(optim="adamw_torch"), or Trainer(optimizers=(' + ADAMW + ", None))",
                      f"configure_optimizers(): return {ADAMW.replace('model.', 'self.')}"),
    "decay-shrinking": Fix("a tenth of the weight decay", "set-wd {wd10}", ("--weight-decay", "{wd10}"),
                           ("--weight-decay",), "weight_decay={wd10} in the optimizer",
                           "TrainingArguments(weight_decay={wd10})", "weight_decay={wd10} in configure_optimizers()"),
    "decay-all": Fix("decay on 2-D weights only", "no-decay-on norms,embeddings", ("--no-decay-all",),
                     ("--decay-all", "--no-decay-all"), GROUPS,
                     "Trainer(optimizers=(" + GROUPS + ", None)) (the Trainer's own optimizer leaves norm gains and "
                     "biases undecayed, not the embeddings)", f"configure_optimizers(): return {GROUPS}"),
    "nonfinite": Fix("half the LR", "set-lr {half}", ("--lr", "{half}"), ("--lr",), "lr={half} in the optimizer",
                     "TrainingArguments(learning_rate={half})", "lr={half} in configure_optimizers()"),
}
"""The fix for each cause code that has one (``{half}``, ``{wd10}``: the run's LR halved, its decay / 10)."""
FIXES.update(dict.fromkeys(("loss-spike", "update-ratio", "attn-entropy", "attn-logit", "logit-z", "flip-back"),
                           FIXES["nonfinite"]))
"""Issue 23's diseases that a lower LR treats (session/analysis/diseases.py): half the LR, as for a divergence."""

OURS = "bitnet-tui run"
"""A header's ``source`` for our own trainer (the only runs whose flags a fix may name)."""


def is_ours(source: str, argv: tuple[str, ...]) -> bool:
    """Whether our trainer ran it: its header says so, or (older logs) its command line was ``bitnet-tui run``."""
    return source == OURS or (not source and same_run_with(argv, [], ()) is not None)


def values(lr: object, wd: object) -> dict[str, str]:
    num = (int, float)
    return {"half": fmt_num(float(lr) / 2) if isinstance(lr, num) and not isinstance(lr, bool) else "<half the LR>",
            "wd10": fmt_num(float(wd) / 10) if isinstance(wd, num) and not isinstance(wd, bool) and wd else "0"}


def fill(text: str, v: dict[str, str]) -> str:
    """``text`` with ``{half}`` and ``{wd10}`` filled in (code snippets keep their own braces)."""
    for k, val in v.items():
        text = text.replace("{" + k + "}", val)
    return text


def in_their_terms(fix: Fix, source: str, v: dict[str, str]) -> tuple[str, str] | None:
    """(what, change) for a run that is not ours: their script, TrainingArguments or configure_optimizers."""
    if source.startswith("transformers"):
        return f"in your Trainer setup, {fix.what}", fill(fix.hf, v)
    if source.startswith("lightning"):
        return f"in your LightningModule, {fix.what}", fill(fix.lightning, v)
    return f"in your training script, {fix.what}", fill(fix.code, v)


def live_command(fix: Fix, name: str, v: dict[str, str]) -> str:
    return shlex.join(["bitnet-tui", "ctl", name, *fill(fix.live, v).split()])


ONE_RUN_ONLY = ("--session-file", "--detach", "--resume")
"""Flags of a ``run`` command line that belong to that one run and are not carried into a new one."""


def same_run_with(argv: tuple[str, ...], add: list[str], drop: tuple[str, ...]) -> str | None:
    """The ``bitnet-tui run`` command line recorded in a header, with the flags in ``drop`` (and their values)
    removed and ``add`` appended; None when the run was not started by ``bitnet-tui run`` (a user's loop)."""
    if len(argv) < 2 or argv[1] != "run" or not ("bitnet" in argv[0] or argv[0].endswith("__main__.py")):
        return None
    out: list[str] = []
    rest = list(argv[2:])
    while rest:
        arg = rest.pop(0)
        flag = arg.split("=", 1)[0]
        if flag in drop or flag in ONE_RUN_ONLY:
            if "=" not in arg and flag not in ("--detach", "--decay-all", "--no-decay-all") and rest \
                    and not rest[0].startswith("--"):
                rest.pop(0)  # its value
            continue
        out.append(arg)
    return shlex.join(["bitnet-tui", "run", *out, *add])
