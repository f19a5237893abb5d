import json, os
import numpy as np

def worker(conn, *args):
    from tinyvla.envs.metaworld import MetaWorldEnv
    from tinyvla.eval.metaworld import _worker
    stats = {"renders": 0, "failed": 0}
    def close(self):  # the close before the fix
        if getattr(self, "_renderer", None) is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()
    def render(self):
        self._renderer.update_scene(self._env.data, camera=self.camera)
        for flag, value in self._flags:
            self._renderer.scene.flags[flag] = value
        out = np.empty((self.render_size, self.render_size, 3), np.uint8)
        out[..., 0], out[..., 1:] = 0, 255
        frame = self._renderer.render(out=out)
        stats["renders"] += 1
        if not frame[..., 0].any() and (frame[..., 1:] == 255).all():
            stats["failed"] += 1
        return np.ascontiguousarray(frame[::-1, ::-1])
    MetaWorldEnv.close, MetaWorldEnv.render = close, render
    try:
        _worker(conn, *args)
    finally:
        os.makedirs("/tmp/dbg", exist_ok=True)
        json.dump(stats, open(f"/tmp/dbg/oldclose_{os.getpid()}.json", "w"))
