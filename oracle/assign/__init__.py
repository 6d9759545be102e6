"""Assigners: which prediction learns from which target (Hungarian matching, max-IoU, task-aligned)."""
