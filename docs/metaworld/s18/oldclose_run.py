"""MT10 x 5 episodes with the env close of before session 18 restored in the workers, counting renders that wrote
nothing (run from the repository root; prints success and the counts)."""
import glob, json, os, sys, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(1)
import oldclose_worker as oldclose
import tinyvla.eval.metaworld as em
from tinyvla.policies.base import Policy
if __name__ == "__main__":
    em._worker = oldclose.worker
    p = Policy.from_pretrained("runs/s18/mt10_small/seed0/best", device=torch.device("cpu"))
    cfg = em.MetaWorldEvalConfig(tasks="mt10", episodes=5, workers=1, videos=0, blind=False, precision="fp32")
    r = em.evaluate_metaworld(p, cfg, progress=False).to_dict()
    s = [json.load(open(f)) for f in glob.glob("/tmp/dbg/oldclose_*.json")]
    print("mean success", r["mean_success_rate"], "renders", sum(x["renders"] for x in s), "failed", sum(x["failed"] for x in s))
