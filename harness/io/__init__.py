"""The io wing."""
