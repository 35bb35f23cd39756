"""A Hugging Face ``Trainer`` run, watched and steered by bitnet-tui (``pip install 'bitnet-tui[hf]'``).

    python examples/hf_trainer.py [--steps 200] [--hidden 128] [--lr 1.5e-3] [--sessions-dir sessions]

A Llama built from a config (nothing is downloaded) whose decoder projections are replaced by BitNet b1.58
``BitLinear`` layers (the FAQ's, from ``plain_loop.py``), trained by ``transformers.Trainer`` on bitnet-tui's
embedded corpus. ``MonitorCallback`` is the only bitnet-tui line in the Trainer's setup. While it runs, from
another terminal: ``bitnet-tui attach latest``, ``bitnet-tui ctl latest set-lr 5e-4``, ``bitnet-tui watch latest``;
a ``stop`` ends ``train()`` cleanly. ``--steps 6 --eval-every 3`` is a smoke test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle CPU threads sleep, not spin
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model comes from a config; nothing needs the hub
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import transformers  # noqa: E402
from plain_loop import BitLinear, arguments, corpus  # noqa: E402

from bitnet_tui.integrations.hf import MonitorCallback  # noqa: E402


def bitify(module: nn.Module) -> int:
    """Every ``nn.Linear`` inside ``module`` becomes a BitLinear with the same weights; returns how many."""
    n = 0
    for name, child in module.named_children():
        if type(child) is nn.Linear:
            new = BitLinear(child.in_features, child.out_features, bias=False)
            new.weight.data.copy_(child.weight.data)
            setattr(module, name, new)
            n += 1
        else:
            n += bitify(child)
    return n


class Windows(torch.utils.data.Dataset):
    """``n`` fixed random windows of ``context`` tokens from a token stream, as HF-style examples (the model
    shifts the labels itself)."""

    def __init__(self, stream: torch.Tensor, context: int, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.starts = torch.randint(0, stream.numel() - context, (n,), generator=g)
        self.stream, self.context = stream, context

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = self.stream[self.starts[i]:self.starts[i] + self.context]
        return {"input_ids": ids, "labels": ids.clone()}


def main() -> None:
    args = arguments(__doc__).parse_args()
    torch.manual_seed(args.seed)
    data = corpus(args.vocab, args.context)
    cfg = transformers.LlamaConfig(vocab_size=data.vocab_size, hidden_size=args.hidden,
                                   intermediate_size=2 * args.hidden, num_hidden_layers=args.layers,
                                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=args.context)
    model = transformers.LlamaForCausalLM(cfg)
    print(f"{bitify(model.model.layers)} projections are BitLinear; embeddings and head stay full precision",
          file=sys.stderr)
    held_out = [{"input_ids": x, "labels": x} for x, _ in data.val_batches(args.batch_size, 2)]
    monitor = MonitorCallback(prompts=data.eval_prompts(4, 8), decode=data.decode, token_text=data.token_text,
                              val_batches=held_out, unigram=data.unigram_counts(data.vocab_size),
                              sessions_dir=args.sessions_dir, run_name=f"hf-h{args.hidden}-lr{args.lr:g}",
                              eval_every=args.eval_every)
    with tempfile.TemporaryDirectory() as out:
        targs = transformers.TrainingArguments(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr, lr_scheduler_type="cosine", warmup_steps=0.1, weight_decay=0.1,
            adam_beta2=0.95, max_grad_norm=1.0, save_strategy="no", report_to="none", disable_tqdm=True,
            seed=args.seed, dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available())
        trainer = transformers.Trainer(model=model, args=targs, callbacks=[monitor],
                                       train_dataset=Windows(data.train, args.context,
                                                             args.steps * args.batch_size, args.seed))
        trainer.remove_callback(transformers.PrinterCallback)  # the Monitor logs every step; no line per step here
        print("steer it from another terminal: bitnet-tui attach latest", file=sys.stderr)
        trainer.train()
    end = monitor.monitor.last_end
    print(f"{end.reason} at step {end.step}; bitnet-tui summary {monitor.session_path}")


if __name__ == "__main__":
    main()
