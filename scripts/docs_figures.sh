#!/usr/bin/env bash
# The figures of docs/results/figures.md (and the README's picture): short real runs, one at a time, then
# their PNGs copied to docs/figures/run-figures/. Run from the repository root: bash scripts/docs_figures.sh
# (about 10 minutes on a quiet 2-core CPU). One thread per run: on a busy machine two threads were ~10x slower.
set -euo pipefail
out=${1:-runs/docs-figures}
dest=docs/figures/run-figures
mkdir -p "$out" "$dest"
export OMP_NUM_THREADS=1
latest() { ls -d "$out"/"$1"-* | tail -1; }

kinn solve poisson2d --family mlp --out "$out" --json > "$out/poisson2d.json"
cp "$(latest poisson2d-mlp-strong)/figures/fields.png" "$dest/poisson2d-fields.png"
cp "$(latest poisson2d-mlp-strong)/figures/history.png" "$dest/poisson2d-history.png"

kinn solve plate_hole --family mlp --form energy --steps 1000 --set train.eval_every=100 --out "$out" --json > "$out/plate_hole.json"
cp "$(latest plate_hole-mlp-energy)/figures/fields.png" "$dest/plate_hole-energy-fields.png"
cp "$(latest plate_hole-mlp-energy)/figures/history.png" "$dest/plate_hole-energy-history.png"

kinn solve burgers1d --family mlp --steps 1000 --lbfgs 500 --out "$out" --json > "$out/burgers1d.json"
cp "$(latest burgers1d-mlp-strong)/figures/fields.png" "$dest/burgers1d-fields.png"
cp "$(latest burgers1d-mlp-strong)/figures/history.png" "$dest/burgers1d-history.png"

kinn compare poisson2d --families mlp,kan --seeds 2 --budget-steps 300 --out "$out/compare-poisson2d"
cp "$out/compare-poisson2d/error_vs_time.png" "$dest/compare-poisson2d-error_vs_time.png"
cp "$out/compare-poisson2d/fields.png" "$dest/compare-poisson2d-fields.png"

# 256-colour palettes: the figures are flat colours and contour bands, and the pages stay light
python -c "
import sys
from PIL import Image
for p in sys.argv[1:]:
    Image.open(p).convert('RGB').quantize(256, dither=Image.Dither.NONE).save(p, optimize=True)
" "$dest"/*.png
