"""The BitNet b1.58 language model and our way of training it.

* :mod:`bitnet_model.nn`: BitLinear (ternary weights, 8-bit activations), the decoder, devices;
* :mod:`bitnet_model.data`: the embedded corpus, the BPE tokenizer, batches;
* :mod:`bitnet_model.train`: the run's configuration, the FAQ's schedules, optimizers, checkpoints, the loop.

It imports only torch, numpy, tokenizers and bitnet-tui's torch-free session layer (knobs, errors, event
types); the loop is given its monitor (:class:`~bitnet_model.train.trainer.LoopMonitor`), never imports one.
"""
