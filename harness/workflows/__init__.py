"""The workflows wing."""
