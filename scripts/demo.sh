#!/usr/bin/env bash
# README command 1: set up, write the demo gallery, index it with the shipped Fashion-MNIST
# model, serve it. Installs only what that needs: the service and the indexer extra (torch, for
# the build); a second run skips the install, the gallery and the index and serves at once.
# The address: PORT, else TRICL_PORT, else 8000; HOST, else TRICL_HOST, else 127.0.0.1 (the
# demo's own variables win over the service's). A port in use stops the demo before anything
# is installed, with the variable to set.
set -euo pipefail
cd "$(dirname "$0")/.."
host=${HOST:-${TRICL_HOST:-127.0.0.1}}
port=${PORT:-${TRICL_PORT:-8000}}

# Stops with one line unless this machine can listen on host:port, tried as the service will.
require_free_port() {
  local python=$1
  if ! "$python" -c '
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
socket.create_server((host, port), family=socket.getaddrinfo(host, port)[0][0]).close()
' "$host" "$port" 2>/dev/null; then
    echo "error: cannot serve on $host:$port (in use?); set PORT to a free port, e.g." \
      "PORT=$((port + 1)) bash scripts/demo.sh" >&2
    exit 1
  fi
}

# Before installing (when Python is there yet), and again before serving.
if command -v python3 >/dev/null; then
  require_free_port python3
fi
WITH_DATA=1 EXTRAS=indexer bash scripts/bootstrap.sh
[ -d imgs ] || .venv/bin/python -m indexer demo-gallery --out imgs
[ -f index/manifest.json ] ||
  .venv/bin/python -m indexer build --gallery imgs --model models/fashion-mnist --out index
require_free_port .venv/bin/python
exec .venv/bin/python -m service --index index --host "$host" --port "$port"
