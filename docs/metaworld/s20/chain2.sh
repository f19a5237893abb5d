#!/bin/bash
# Session 20, after chain.sh: the third lever (both sources open: no tanh(g) gate), seed 0.
cd "$(dirname "$0")/../../.."
while pgrep -f "s20/chain.sh" > /dev/null; do sleep 20; done
OUT=runs/s20; . docs/metaworld/lever.sh
lever va_nogate 0 "--policy.gate none"
