"""Serve a trained policy to robot clients: `tinyvla serve CKPT`, `PolicyClient`, `tinyvla bench serve`."""
