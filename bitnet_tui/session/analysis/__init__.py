"""What a log says: the collapse detector, verdicts, summaries, the compare table, and scripted streams for tests."""
