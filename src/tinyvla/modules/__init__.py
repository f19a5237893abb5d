"""Shared building blocks: transformer blocks, ViT, text encoder, fusion and action heads."""
