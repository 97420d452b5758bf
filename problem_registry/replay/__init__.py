"""Replay: the (version, pattern) pairs with no stored result -> model calls -> stored rows."""
