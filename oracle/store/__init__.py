"""The oracle's SQLite store: the schema and its migrations, the samples (append, seal hours, read columns), and
the journal of report intents, signatures and submissions."""
