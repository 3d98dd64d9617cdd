"""ssformer-repro"""

__version__ = "0.1"
