"""The seed's TinyVLA: tiny ViT + tiny transformer + pooling/add fusion + MLP action head."""
