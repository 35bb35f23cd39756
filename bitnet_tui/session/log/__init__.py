"""Session logs: the event schema (``events``), writing, reading, following, where they live, and text safety."""
