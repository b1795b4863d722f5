"""SafePickle Bench: static, ML-based detection of malicious pickle model files."""

__version__ = "0.1.0"
