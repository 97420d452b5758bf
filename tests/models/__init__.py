"""Real models for the replay tests: trusted loader code, imported by ``module:callable``."""
