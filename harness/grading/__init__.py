"""The grading wing."""
