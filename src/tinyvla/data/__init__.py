"""Datasets kept as tensors in memory, their on-disk format and normalisation statistics."""
