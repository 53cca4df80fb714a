#!/usr/bin/env bash
# Ensures a wheel of llama-cpp-python exists in the wheel cache; compiles it (about 8 minutes)
# only if missing. `build-llama-wheel.sh --detect` only prints the CPU variant it would build.
#
# Two variants, chosen from the CPU flags (or RATHAUS_LLAMA_CPU=avx2|avx512):
#   avx512  AVX-512 with VNNI, BF16 and VBMI plus AVX-VNNI, where the CPU announces all of them:
#           reads prompts about twice as fast as avx2 on the same cores (docs/models.md).
#   avx2    every other x86-64 CPU of the last ten years.
# Never -march=native and never AMX: on Xeon machines whose hypervisor announces AMX, the
# native build crashed in decode (segmentation fault). scripts/setup.sh runs the model once
# after installing and falls back to avx2 if the avx512 build fails there.
set -euo pipefail

VERSION=0.3.36
# The CPU flags (/proc/cpuinfo spelling) every instruction set of the avx512 build needs.
AVX512_NEEDS="avx2 fma f16c avx512f avx512cd avx512vl avx512dq avx512bw avx512_vnni avx512_bf16 avx512vbmi avx_vnni"

detect() {
    local flags need
    flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
    for need in $AVX512_NEEDS; do
        [[ $flags == *" $need "* ]] || { echo avx2; return; }
    done
    echo avx512
}

VARIANT=${RATHAUS_LLAMA_CPU:-$(detect)}
if [ "${1:-}" = "--detect" ]; then
    echo "$VARIANT"
    exit 0
fi
COMMON="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
case $VARIANT in
avx2) CMAKE_FLAGS="$COMMON -DGGML_AVX512=OFF" ;;
avx512) CMAKE_FLAGS="$COMMON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX_VNNI=ON" ;;
*)
    echo "RATHAUS_LLAMA_CPU=$VARIANT ist unbekannt (erlaubt: avx2, avx512)." >&2
    exit 1
    ;;
esac
CACHE=${RATHAUS_WHEEL_CACHE:-$HOME/.cache/rathaus/wheels/llama-$VERSION-$VARIANT}
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
    echo "llama-cpp-python $VERSION ($VARIANT): Wheel im Cache ($CACHE)."
    exit 0
fi

# Another setup may be compiling right now: wait for it instead of compiling twice.
exec 9>"$CACHE/.llama-cpp-python.lock"
flock 9
if have_wheel; then
    echo "llama-cpp-python $VERSION ($VARIANT): Wheel im Cache ($CACHE)."
    exit 0
fi

echo "Baue llama-cpp-python $VERSION für $VARIANT (dauert etwa 8 Minuten, einmalig) …"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CMAKE_ARGS="$CMAKE_FLAGS" MAKEFLAGS=-j2 CMAKE_BUILD_PARALLEL_LEVEL=2 \
    "$PYTHON" -m pip wheel --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$VERSION"
mv "$tmp"/llama_cpp_python-"$VERSION"-*.whl "$CACHE"/
echo "llama-cpp-python $VERSION ($VARIANT): Wheel gebaut und abgelegt in $CACHE."
