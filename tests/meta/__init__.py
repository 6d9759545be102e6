"""The suite itself: the conformance plugin and runner against faulty implementations, the comparison policy,
the ONNX path, the docs' examples and the import layering."""
