"""Golden fixtures (DESIGN.md §5). Not built yet: see the [golden] issue; `python -m golden` does not exist yet."""
