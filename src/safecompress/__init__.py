"""safecompress: compress neural networks into sparse models that stay accurate and private."""

__version__ = "0.1.0"
