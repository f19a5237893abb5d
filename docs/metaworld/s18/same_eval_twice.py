"""Evaluate one checkpoint twice (workers A then B, argv) hashing every policy call; prints the first divergence."""
import hashlib, sys, torch
torch.set_num_threads(1)
from tinyvla.policies.base import Policy
from tinyvla.eval.metaworld import MetaWorldEvalConfig, evaluate_metaworld
def h(t): return hashlib.md5(t.numpy().tobytes()).hexdigest()[:8]
class Rec:
    def __init__(self, p): self.p, self.config, self.state_dim, self.device, self.log = p, p.config, p.state_dim, p.device, []
    def predict_action_chunk(self, batch):
        out = self.p.predict_action_chunk(batch)
        self.log.append((h(batch["observation.image"]), h(batch["observation.state"]), tuple(batch["task"]), h(out),
                         [h(im) for im in batch["observation.image"]], batch["observation.image"].clone()))
        return out
if __name__ == "__main__":
    p = Policy.from_pretrained("runs/s18/mt10_small/seed0/best", device=torch.device("cpu"))
    logs = {}
    for name, w in [("a", int(sys.argv[1])), ("b", int(sys.argv[2]))]:
        r = Rec(p)
        cfg = MetaWorldEvalConfig(tasks="reach,push,door-open", episodes=8, workers=w, videos=0, blind=False, precision="fp32")
        res = evaluate_metaworld(r, cfg, progress=False).to_dict()
        logs[name] = r.log
        print(name, {t: (x["successes"], x["mean_episode_steps"]) for t, x in res["tasks"].items()}, len(r.log), flush=True)
    for i, (x, y) in enumerate(zip(logs["a"], logs["b"])):
        if x[:4] != y[:4]:
            rows = [j for j, (u, v) in enumerate(zip(x[4], y[4])) if u != v]
            d = (x[5].int() - y[5].int()).abs()
            print("rows", rows, "of", len(x[4]), x[2][rows[0]] if rows else "", "pixels differing", int((d > 0).sum()), "max", int(d.max()))
            print("first divergence at call", i, "inputs equal:", x[:3] == y[:3], "image", x[0] == y[0], "state", x[1] == y[1], "out", x[3] == y[3])
            break
    else:
        print("identical call logs")
