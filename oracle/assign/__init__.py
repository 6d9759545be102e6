"""Assigners: which prediction learns from which target."""
