#!/usr/bin/env bash
# Ensures a wheel of llama-cpp-python exists in the wheel cache; compiles it (about 8 minutes) only if missing.
set -euo pipefail

VERSION=0.3.36
# Built for AVX2 without AVX-512 and AMX (not -march=native): on Xeon machines whose
# hypervisor announces AMX, the native build crashed in decode (segmentation fault).
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
CACHE=${RATHAUS_WHEEL_CACHE:-$HOME/.cache/rathaus/wheels/llama-$VERSION-avx2}
PYTHON=${PYTHON:-.venv/bin/python}

if ! [ -x "$PYTHON" ]; then
    echo "Python-Umgebung $PYTHON fehlt – bitte \`make setup\` ausführen." >&2
    exit 1
fi
mkdir -p "$CACHE"

have_wheel() {
    # The wheel is tagged py3-none-linux_x86_64: it loads libllama through ctypes.
    compgen -G "$CACHE/llama_cpp_python-$VERSION-*.whl" >/dev/null
}

if have_wheel; then
    echo "llama-cpp-python $VERSION: Wheel im Cache ($CACHE)."
    exit 0
fi

# Another setup may be compiling right now: wait for it instead of compiling twice.
exec 9>"$CACHE/.llama-cpp-python.lock"
flock 9
if have_wheel; then
    echo "llama-cpp-python $VERSION: Wheel im Cache ($CACHE)."
    exit 0
fi

echo "Baue llama-cpp-python $VERSION (dauert etwa 8 Minuten, einmalig) …"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CMAKE_ARGS="$CMAKE_FLAGS" MAKEFLAGS=-j2 CMAKE_BUILD_PARALLEL_LEVEL=2 \
    "$PYTHON" -m pip wheel --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$VERSION"
mv "$tmp"/llama_cpp_python-"$VERSION"-*.whl "$CACHE"/
echo "llama-cpp-python $VERSION: Wheel gebaut und abgelegt in $CACHE."
