# Shared by scripts/serve and scripts/check: make sure python3 can create a virtual
# environment (Debian ships venv support in the separate python3-venv package).
ensure_venv_support() {
    probe="$(mktemp -d)"
    if python3 -m venv "$probe/v" >/dev/null 2>&1; then
        rm -rf "$probe"
        return 0
    fi
    rm -rf "$probe"
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing python3-venv (Debian)..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    else
        echo "python3 cannot create virtual environments; install python3-venv" >&2
        exit 1
    fi
}

# The test suite turns report PDFs into PNG pages with poppler's pdftoppm (Debian
# poppler-utils); install it when it is missing.
ensure_test_tools() {
    if command -v pdftoppm >/dev/null 2>&1; then
        return 0
    fi
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "installing poppler-utils (Debian) for the report tests..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils
    else
        echo "pdftoppm is missing; install poppler-utils" >&2
        exit 1
    fi
}
