"""The same 50 episodes as oldclose_run.py with the fixed close (prints success)."""
import os, sys, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(1)
import tinyvla.eval.metaworld as em
from tinyvla.policies.base import Policy
if __name__ == "__main__":
    pass
    p = Policy.from_pretrained("runs/s18/mt10_small/seed0/best", device=torch.device("cpu"))
    cfg = em.MetaWorldEvalConfig(tasks="mt10", episodes=5, workers=1, videos=0, blind=False, precision="fp32")
    r = em.evaluate_metaworld(p, cfg, progress=False).to_dict()
    print("mean success", r["mean_success_rate"])
