"""Decoder heads: the Progressive Locality Decoder and SegFormer's all-MLP decoder."""
