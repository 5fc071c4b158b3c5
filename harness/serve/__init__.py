"""The serve wing."""
