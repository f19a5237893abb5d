#!/bin/bash
# Session 20, after chain2.sh: the no-gate lever's second seed (seed 1, paired with session 19's VLA-Adapter seed 1
# on the same 200 scenes).
cd "$(dirname "$0")/../../.."
while pgrep -f "s20/chain2.sh" > /dev/null; do sleep 20; done
OUT=runs/s20; . docs/metaworld/lever.sh
lever va_nogate_seed1 1 "--policy.gate none"
