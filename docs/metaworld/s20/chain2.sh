#!/bin/bash
# Session 20, after chain.sh: the third lever (both sources open: no tanh(g) gate), seed 0.
cd /work/main
while pgrep -f "s20/chain.sh" > /dev/null; do sleep 20; done
. docs/metaworld/s20/lever.sh
lever va_nogate 0 "--policy.gate none"
