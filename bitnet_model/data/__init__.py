"""Text, tokenizer and batches: ``corpus`` -> ``tokenizer`` -> ``dataset``
(:func:`~bitnet_model.data.dataset.load_data`)."""
