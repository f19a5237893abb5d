from conftest import TINY_OVERRIDES

TINY_FLAGS = [x for k, v in TINY_OVERRIDES.items() for x in (f"--{k}", str(v))]
