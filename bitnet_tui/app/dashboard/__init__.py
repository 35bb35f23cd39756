"""The dashboard: one Textual app over a run's event stream, fed by a live run, a log, or a growing log."""
