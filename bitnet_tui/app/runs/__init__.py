"""A run's lifecycle: from command-line knobs to a trainer with its log and control socket; signals; forks."""
