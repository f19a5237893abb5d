import json, statistics as st
R = {}
for f in ("runs/s22/vla_gate_pre/runs.jsonl", "runs/s22/vla_cond_pre/runs.jsonl"):
    for l in open(f):
        r = json.loads(l)
        R[(r["config"], r["seed"])] = r
rows = [("both, all layers (= no gate)", "no gate"), ("AQ, all layers", "AQ, all layers"), ("Raw, all layers", "Raw, all layers")]
for label, c in rows:
    seeds = [s for s in range(3) if (c, s) in R]
    v = [R[(c, s)]["val_l2"] for s in seeds]
    k = sum(round(R[(c, s)]["success_rate"] * R[(c, s)].get("episodes", 50 if c == "no gate" else 20)) for s in seeds)
    n = sum(R[(c, s)].get("episodes", 50 if c == "no gate" else 20) for s in seeds)
    extra = ""
    if c != "no gate":
        d = [R[(c, s)]["val_l2"] - R[("no gate", s)]["val_l2"] for s in seeds]
        h = 4.303 * st.stdev(d) / 3 ** 0.5 if len(d) == 3 else float("nan")
        extra = f"minus both {st.mean(d):+.3f} ({st.mean(d)-h:+.3f} to {st.mean(d)+h:+.3f}) {[round(x,4) for x in d]}"
    mr = [R[(c, s)].get("mass_raw") for s in seeds]
    print(label, " / ".join(f"{x:.4f}" for x in v), f"{st.mean(v):.4f} ± {st.stdev(v) if len(v)>1 else 0:.4f}", f"{k}/{n}", extra, mr)
if all(("AQ, all layers", s) in R and ("Raw, all layers", s) in R for s in range(3)):
    d = [R[("Raw, all layers", s)]["val_l2"] - R[("AQ, all layers", s)]["val_l2"] for s in range(3)]
    h = 4.303 * st.stdev(d) / 3 ** 0.5
    print("Raw - AQ", [round(x, 4) for x in d], f"{st.mean(d):+.3f} ({st.mean(d)-h:+.3f} to {st.mean(d)+h:+.3f})")
