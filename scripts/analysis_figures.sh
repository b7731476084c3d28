#!/usr/bin/env bash
# The README's KAN-analysis figures and numbers, one command each (run from the repository root;
# about 15 minutes on 2 CPU cores). Each command prints the figures it reports.
#   OMP_NUM_THREADS=1 PYTHONPATH=$PWD bash scripts/analysis_figures.sh [OUT]
set -euo pipefail
OUT=${1:-runs/analysis}
kinn() { python -m kinn "$@"; }
kinn solve poisson2d --family kan --dtype float64 --out "$OUT" --set name='"poisson2d-kan"'
kinn show "$OUT/poisson2d-kan" --edges
kinn symbolic "$OUT/poisson2d-kan"
kinn solve koch_snowflake --family kan --dtype float64 --out "$OUT" --set name='"koch-kan"'
kinn symbolic "$OUT/koch-kan"
kinn symbolic "$OUT/koch-kan" --library 0,x,x^2,x^3,x^4,sin,cos,exp,tanh
kinn ntk multiscale_fit --families mlp,kan --steps 0,1000,5000 --out "$OUT/ntk"
kinn sweep poisson2d --sweep kan.grid=3,5,10,20 --sweep 'mlp.widths=[8,8],[16,16],[32,32],[64,64]' \
    --steps 1000 --seeds 2 --out "$OUT/sweep"
