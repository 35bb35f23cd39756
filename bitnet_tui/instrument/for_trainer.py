"""The Monitor as bitnet-tui's own trainer needs it: everything the Trainer knows that a user's loop does not.

A user's loop builds ``Monitor(model, optimizer, ...)`` itself; our ``run`` builds it here from a set-up
:class:`~bitnet_model.train.trainer.Trainer` (its data, model, optimizer, prompts, held-out batches, the
corpus' unigram counts, the configuration as recorded, the audit's inputs, the checkpoint it continues from).
"""

from __future__ import annotations

from pathlib import Path

from bitnet_model.nn.device import peak_flops
from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.config import MonitorConfig, TrainerFacts
from bitnet_tui.instrument.monitor import Monitor


def monitor_for(trainer: Trainer, session_path: str | Path | None, *, control: bool = False,
                checkpoint_every: int = 0, keep_checkpoints: int = 3, tensorboard: str | None = None,
                autopilot: bool = False) -> Monitor:
    """The Monitor that will write ``session_path`` (rank 0) and serve its control socket; set up ``trainer``."""
    trainer.setup()
    cfg, d = trainer.cfg, trainer.cfg.diag
    log_every = cfg.train.log_every or (10 if trainer.device.type == "cuda" else 1)
    options = MonitorConfig(
        session_path=session_path, weights_every=d.weights_every, gen_tokens=d.gen_tokens,
        token_text=trainer.data.token_text, vocab_size=cfg.model.vocab_size,
        unigram=trainer.data.unigram_counts(cfg.model.vocab_size), save=trainer.checkpoint,
        checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, control=control, detector=d.detector,
        total_steps=trainer.total_steps, report_metric=d.report_metric, on_nonfinite=trainer.on_nonfinite,
        log_every=log_every, tensorboard=tensorboard, argv=trainer.argv, context=cfg.model.context,
        parent=trainer.parent, autopilot=autopilot, eval_budget=None)  # DiagConfig sizes its evals (4.6% of wall)
    facts = TrainerFacts(
        checkpoint_suffix=".pt", start_step=trainer.loaded_step, source="bitnet-tui run",
        header={"corpus": dict(trainer.data.corpus_info), "tokenizer": dict(trainer.data.tokenizer_info)},
        audit={"peak_lr": cfg.train.peak_lr, "hidden": cfg.model.hidden, "schedule": cfg.train.schedule},
        flops_per_token=trainer.model.flops_per_token(), peak_flops=peak_flops(trainer.device), skips_nonfinite=True,
        held_out=trainer.autocast)
    mon = Monitor(trainer.net, trainer.optimizer, decode=trainer.data.decode, prompts=trainer.prompts,
                  val_batches=trainer.val_batches, run_name=trainer.run_name, config=trainer.recorded(),
                  eval_every=d.eval_every, options=options, facts=facts)
    state = trainer.loaded_monitor_state
    if state is not None:
        mon.load_state_dict(state)
        forked = trainer.forked_lr()
        if forked is not None:  # the LR a fork was given is its LR from its first step on
            mon.lr.start_at(forked)
    trainer.monitor = mon
    return mon
