"""podcast-search: the library the DVC stages call."""
