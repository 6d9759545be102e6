"""ONNX export and onnxruntime checks of the deployable heads (DESIGN §9; docs/onnx.md)."""
