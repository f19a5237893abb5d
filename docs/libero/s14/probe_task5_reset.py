"""LIBERO-10 task 5, initial states 18, 28, 40, 43 (7: a control): is the book thrown at the 11th no-op step with
LIBERO's own reset too? Run from the repository root: PYTHONPATH=src .venv-libero/bin/python docs/libero/s14/probe_task5_reset.py"""
import numpy as np
from tinyvla.envs.libero_worker import Worker, SETTLE_ACTION

w = Worker()
w.make("libero_10", 5, 64, "fast", "lerobot", ["image"])
env, inner = w.env, w.env.env
bid = inner.obj_body_id["black_book_1"]
for state in [18, 28, 40, 43, 7]:
    for variant in ("libero", "tinyvla"):
        if variant == "libero":
            env.reset()
            env.set_init_state(w.init_states[state])
        else:
            w.reset(state, 0, False)
        zs = []
        for t in range(15):
            env.step(SETTLE_ACTION)
            zs.append(round(float(inner.sim.data.body_xpos[bid][2]), 3))
        print(state, variant, zs, flush=True)
