"""The golden fixtures: reading, checking, regenerating, the drift policy; and the component contract's helpers."""
