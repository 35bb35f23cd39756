"""The network: BitNet b1.58's quantisers and BitLinear (``quant``), the decoder around them (``model``),
and where tensors run (``device``)."""
