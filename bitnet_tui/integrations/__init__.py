"""The Monitor inside other people's trainers, each an optional extra.

* :mod:`bitnet_tui.integrations.hf`: ``MonitorCallback`` for Hugging Face ``transformers.Trainer``
  (``pip install 'bitnet-tui[hf]'``).
* :mod:`bitnet_tui.integrations.lightning`: ``MonitorCallback`` for ``lightning.pytorch.Trainer``
  (``pip install 'bitnet-tui[lightning]'``).

Each callback builds a :class:`~bitnet_tui.instrument.monitor.Monitor` when training begins (the model, the
trainer's real ``torch.optim`` optimizer, and the prompts, decoder and held-out batches given to the callback),
feeds it every optimizer step with that step's loss, lets its LR commands act on the trainer's optimizer
through the Monitor's step hooks, stops the trainer cleanly on a stop command, and ends the session log when
training ends. The session is then a session like any other: ``bitnet-tui attach/ctl/watch`` steer and follow
it while it runs, ``replay/summary/compare/export`` read it afterwards.

Importing this package imports neither framework (nor torch); each module imports its framework itself.
"""
