"""The ``bitnet-tui`` command line: one module per group of commands, registered on the app in ``app``."""
