"""The report wing."""
