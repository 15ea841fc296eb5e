# Shared by scripts/serve, scripts/check and scripts/lock. Every Python package comes from
# the committed lock (uv.lock), installed by uv, itself pinned with hashes in
# scripts/uv-requirements.txt; uv uses this machine's python3 and never downloads one.

export UV_PYTHON_DOWNLOADS=never
# Trust the system's certificate store, as pip and apt do (a TLS-inspecting proxy's CA
# installed there works for uv too); set UV_SYSTEM_CERTS=0 for uv's built-in roots.
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-1}"
UV=.uv/bin/uv

# python3 must be able to create a virtual environment for uv itself (Debian ships venv
# support in the separate python3-venv package).
ensure_venv_support() {
    probe="$(mktemp -d)"
    if python3 -m venv "$probe/v" >/dev/null 2>&1; then
        rm -rf "$probe"
        return 0
    fi
    rm -rf "$probe"
    apt_install python3-venv
}

# uv in .uv/, at the version and hashes of scripts/uv-requirements.txt.
ensure_uv() {
    if [ -x "$UV" ] && [ .uv/.installed -nt scripts/uv-requirements.txt ]; then
        return 0
    fi
    ensure_venv_support
    rm -rf .uv
    python3 -m venv .uv
    .uv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
        --require-hashes -r scripts/uv-requirements.txt
    touch .uv/.installed
}

# sync_env DIR EXTRA...: the environment DIR holds exactly the locked versions of llmtrail
# (editable) and the given extras.
sync_env() {
    dir="$1"
    shift
    extras=""
    for extra in "$@"; do
        extras="$extras --extra $extra"
    done
    # shellcheck disable=SC2086
    UV_PROJECT_ENVIRONMENT="$dir" "$UV" sync --frozen --python python3 --quiet $extras
}

# The test suite turns report PDFs into PNG pages with poppler's pdftoppm (Debian
# poppler-utils) and drives the web UI in Debian's headless chromium through Playwright
# (never `playwright install`); install them when they are missing.
ensure_test_tools() {
    missing=""
    command -v pdftoppm >/dev/null 2>&1 || missing="$missing poppler-utils"
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
    # shellcheck disable=SC2086
    [ -z "$missing" ] || apt_install $missing
}

apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing $* (Debian)..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
    else
        echo "missing: $* (install it with your system's package manager)" >&2
        exit 1
    fi
}
