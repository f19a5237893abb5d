#!/bin/bash
# stop the VA reproduce after seed 1 (seed 2 does not fit the session), so the chain goes on to TinyVLA
cd /work/main
while ! grep -q "eval_seed1" runs/s19/va_small/times.json 2>/dev/null; do sleep 5; done
sleep 3
pkill -f "reproduce mt10 --budget cpu_small --policy.type vla_adapter"
echo "cut at $(date)" > runs/s19/cut.log
