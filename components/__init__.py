"""The component contract, the layer between the reference (``oracle``) and the fixtures (``golden``).

A component is called as ``call(inputs, config, profile) -> outputs`` with canonical names
(:mod:`components.contract`, the dense-detector calls in :mod:`components.dense_calls`); the golden
fixtures store these inputs and outputs, the conformance suite calls an adapter with them, and the
canonical-format helpers (:mod:`components.canonical`) are what an adapter needs to translate them
into a library's own layout.
"""
