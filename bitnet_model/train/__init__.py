"""Training: the run configuration, LR schedules, the optimizer, the loop, checkpoints and presets."""
