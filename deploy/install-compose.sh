#!/usr/bin/env bash
# Install Docker Compose v2 as the docker CLI plugin (~/.docker/cli-plugins/docker-compose),
# built from its Go module with the machine's Go: Debian's docker-compose package is Compose
# v1, which does not read this project's file. The built binary is cached, so a second run
# takes a second. Only `docker compose config` is needed here (tests/test_cli/test_compose.py);
# it needs no Docker engine.
set -euo pipefail

version=${COMPOSE_VERSION:-v5.6.0}
module=github.com/docker/compose/v5
plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
cache=${XDG_CACHE_HOME:-$HOME/.cache}/perfloop/compose-$version

if docker compose version 2>/dev/null | grep -q "version $version"; then
    exit 0
fi
if [[ ! -x $cache/docker-compose ]]; then
    command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
    command -v go >/dev/null || { echo "install-compose: Go is needed to build Compose" >&2; exit 1; }
    echo "building Docker Compose $version with $(go version | cut -d' ' -f3)"
    src=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [[ -n $src ]] || { echo "install-compose: cannot download $module@$version" >&2; exit 1; }
    work=$(mktemp -d)
    trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
    # the module declares exclude directives, so `go install pkg@version` refuses it: build it
    # as the main module of a copy
    cp -r "$src" "$work/src"
    chmod -R u+w "$work/src"
    mkdir -p "$cache"
    (cd "$work/src" && GOFLAGS=-buildvcs=false go build -trimpath \
        -ldflags "-s -w -X $module/internal.Version=$version" -o "$cache/docker-compose" ./cmd)
fi
mkdir -p "$plugins"
install -m 0755 "$cache/docker-compose" "$plugins/docker-compose"
docker compose version
