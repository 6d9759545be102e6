"""The conformance suite: the pytest plugin (``pytest --impl=NAME conformance``), the adapters of each
implementation, the comparison policy and tolerances, the hypothesis strategies and profiles, the ONNX
exports, and the reports (docs/conformance.md)."""
