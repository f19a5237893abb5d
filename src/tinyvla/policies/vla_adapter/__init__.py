"""VLA-Adapter: `--policy.type vla_adapter` (import `modeling` to register it)."""
