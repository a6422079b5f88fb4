#!/usr/bin/env bash
# Installs the Debian packages segloss needs to build and test, when any is missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail
# build: compiler and the libraries' -dev packages
# tests: curl and python3 (end-to-end), python3-numpy (the Python example and client),
#        python3-torch and python3-venv (the client's tests: torch tensors, pip install), nodejs, npm and
#        chromium (the OpenAPI lint and the dashboard's browser test), clang (make fuzz)
#        postgresql and nginx (the scale-out test: replicas on a shared store behind nginx),
#        openssl (the TLS test makes its certificate), prometheus (promtool checks a scrape),
#        clang-format (make format-check)
pkgs=(gcc make pkg-config libc6-dev libmicrohttpd-dev libcjson-dev libpng-dev zlib1g-dev
      libturbojpeg0-dev libjpeg62-turbo-dev libsqlite3-dev libpq-dev libgnutls28-dev
      curl python3 python3-numpy python3-torch python3-venv chromium clang postgresql nginx openssl
      prometheus clang-format)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js may come from another packaging (nodesource's nodejs ships npm itself): a working
# node and npm are what the tests need, whichever package brought them.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # wait for another apt run (a second `make` in parallel) instead of failing on its lock
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
else
    echo "segloss needs these Debian packages; run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
