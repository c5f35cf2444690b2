#!/usr/bin/env bash
# serve.sh - build buzon as one static binary and run it on its embedded
# default: data in ./buzon-data, a self-signed certificate, listeners on
# loopback, and on first start an account whose password it prints once.
# Extra arguments go to `buzon serve` (e.g. --data /srv/mail --imap off).
set -euo pipefail
cd "$(dirname "$0")/.."
# Go's own tarball installs in /usr/local/go, which a new shell may not
# have on its PATH yet.
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "serve.sh: Go 1.26 is needed (https://go.dev/dl/)" >&2; exit 1; }
mkdir -p bin
# A first build fetches and compiles every dependency, which takes minutes
# on a small machine; say so rather than sit silent.
echo "serve.sh: building bin/buzon" >&2
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o bin/buzon ./cmd/buzon
exec bin/buzon serve "$@"
