"""A Lightning run, watched and steered by bitnet-tui (``pip install 'bitnet-tui[lightning]'``).

    python examples/lightning_module.py [--steps 200] [--hidden 128] [--lr 1.5e-3] [--sessions-dir sessions]

The same BitNet b1.58 ``TinyGPT`` as ``plain_loop.py``, in a ``LightningModule``, trained by
``lightning.pytorch.Trainer`` on bitnet-tui's embedded corpus with ``MonitorCallback`` among its callbacks.
While it runs, from another terminal: ``bitnet-tui attach latest``, ``bitnet-tui ctl latest set-lr 5e-4``,
``bitnet-tui watch latest``; a ``stop`` ends ``fit()`` cleanly. ``--steps 6 --eval-every 3`` is a smoke test.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle CPU threads sleep, not spin
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from plain_loop import TinyGPT, arguments, corpus, param_groups, warmup_cosine  # noqa: E402

from bitnet_tui.integrations.lightning import MonitorCallback  # noqa: E402


class LitGPT(pl.LightningModule):
    """``forward(ids) -> logits`` (the Monitor's evals call it), next-token loss, AdamW with warmup-cosine."""

    def __init__(self, vocab: int, hidden: int, layers: int, context: int, lr: float, steps: int) -> None:
        super().__init__()
        self.save_hyperparameters()  # recorded in the session's header as config["hparams"]
        self.net = TinyGPT(vocab, hidden, layers, context=context)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.net(ids)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x).flatten(0, 1), y.flatten())

    def configure_optimizers(self):
        opt = torch.optim.AdamW(param_groups(self.net, 0.1), lr=self.hparams.lr, betas=(0.9, 0.95))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(self.hparams.steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class Windows(torch.utils.data.IterableDataset):
    """Endless seeded random (x, y) windows from the corpus, one batch at a time (bitnet-tui's own batcher)."""

    def __init__(self, data, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def __iter__(self):
        return iter(self.data.batches(self.batch_size, seed=self.seed))


def main() -> None:
    args = arguments(__doc__).parse_args()
    torch.manual_seed(args.seed)
    data = corpus(args.vocab, args.context)
    module = LitGPT(data.vocab_size, args.hidden, args.layers, args.context, args.lr, args.steps)
    monitor = MonitorCallback(prompts=data.eval_prompts(4, 8), decode=data.decode, token_text=data.token_text,
                              val_batches=data.val_batches(args.batch_size, 2),
                              unigram=data.unigram_counts(data.vocab_size), sessions_dir=args.sessions_dir,
                              run_name=f"lightning-h{args.hidden}-lr{args.lr:g}", eval_every=args.eval_every,
                              context=args.context)
    trainer = pl.Trainer(max_steps=args.steps, gradient_clip_val=1.0, callbacks=[monitor], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    loader = torch.utils.data.DataLoader(Windows(data, args.batch_size, args.seed), batch_size=None)
    print("steer it from another terminal: bitnet-tui attach latest", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")  # the batches are in memory
        trainer.fit(module, loader)
    end = monitor.monitor.last_end
    print(f"{end.reason} at step {end.step}; bitnet-tui summary {monitor.session_path}")


if __name__ == "__main__":
    main()
