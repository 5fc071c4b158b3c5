"""The results wing."""
