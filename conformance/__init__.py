"""The conformance suite (DESIGN.md §6-§8). So far only the shared hypothesis strategies and profiles
exist here; the pytest plugin and adapters come with the [conformance] issue."""
