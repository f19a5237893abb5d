"""Policies: a shared interface (`base.Policy`) and a registry of implementations."""

from tinyvla.policies.registry import available_policies, get_policy_class, make_policy, register_policy

__all__ = ["available_policies", "get_policy_class", "make_policy", "register_policy"]
