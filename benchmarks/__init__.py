"""pytest-benchmark suites: the reference against each installed implementation."""
