"""The golden case tables, one module per area, mirroring the conformance modules ``conformance/test_<area>.py``;
each has ``cases()``. golden/catalogue.py concatenates them."""
