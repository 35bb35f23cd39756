"""The instrument inside a training loop: evals, weight snapshots, the detector, the log and the control socket."""
