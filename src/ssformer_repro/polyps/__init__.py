"""Data layer: reading, discovering, validating, splitting, caching and augmenting polyp images."""
