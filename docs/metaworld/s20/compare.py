"""Per-task success of several Meta-World results.json side by side (same scenes: eval seed 0, 20 episodes per task).

python docs/metaworld/s20/compare.py runs/s19/va_small/seed0/eval/results.json runs/s20/va_mse/eval/results.json
"""
import json
import sys

runs = sys.argv[1:]
results = [json.load(open(p)) for p in runs]
print("| task | " + " | ".join("/".join(p.split("/")[-4:-2]) for p in runs) + " |")
for task in results[0]["tasks"]:
    print(f"| {task} | " + " | ".join(f"{r['tasks'][task]['success_rate'] * 100:.0f}" for r in results) + " |")
print("| mean | " + " | ".join(f"{r['mean_success_rate'] * 100:.1f}" for r in results) + " |")
