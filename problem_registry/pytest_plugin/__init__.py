"""The pytest plugin: hooks (one-liners) over a session object holding options parsed once."""
