#!/bin/sh
# Builds the real plakar (the protocol's judge) from the Go module proxy and
# caches the binary. `go install` of plakar is refused by the proxy and one
# dependency (go.omarpolo.com/ttlmap, used only by plakar's HTTP UI for signed
# download URLs) is not served, so we download the exact source, replace that
# module with a minimal local one, and build.
#
# Usage: tasks/build_plakar.sh [VERSION]   prints the binary's path on stdout.
set -eu
VERSION="${1:-${PLAKAR_VERSION:-v1.1.4}}"
CACHE="${PLAKAR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/plakar-postgresql/plakar-$VERSION}"
BIN="$CACHE/plakar"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
command -v go >/dev/null 2>&1 || { echo "build_plakar: go is required to build plakar $VERSION" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/scratch" "$WORK/ttlmap"
cd "$WORK/scratch"
go mod init scratch >/dev/null 2>&1
GOFLAGS=-mod=mod go mod download -json "github.com/PlakarKorp/plakar@$VERSION" >"$WORK/dl.json"
SRC="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$WORK/dl.json" | head -n1)"
[ -d "$SRC" ] || { echo "build_plakar: could not download plakar $VERSION" >&2; exit 1; }
cp -r "$SRC" "$WORK/plakar"
chmod -R u+w "$WORK/plakar"
cat >"$WORK/ttlmap/go.mod" <<'MOD'
module go.omarpolo.com/ttlmap

go 1.21
MOD
cat >"$WORK/ttlmap/ttlmap.go" <<'GO'
// Package ttlmap is a minimal stand-in for go.omarpolo.com/ttlmap, which the
// Go module proxy does not serve: a map whose entries expire after a TTL.
package ttlmap

import (
	"sync"
	"time"
)

type entry[V any] struct {
	v       V
	expires time.Time
}

type Map[K comparable, V any] struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[K]entry[V]
}

func New[K comparable, V any](ttl time.Duration) *Map[K, V] {
	return &Map[K, V]{ttl: ttl, m: make(map[K]entry[V])}
}

func (t *Map[K, V]) Add(k K, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[k] = entry[V]{v: v, expires: time.Now().Add(t.ttl)}
}

func (t *Map[K, V]) Get(k K) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[k]
	if !ok || time.Now().After(e.expires) {
		delete(t.m, k)
		var zero V
		return zero, false
	}
	return e.v, true
}

func (t *Map[K, V]) AutoExpire() {
	go func() {
		for range time.Tick(t.ttl) {
			t.mu.Lock()
			now := time.Now()
			for k, e := range t.m {
				if now.After(e.expires) {
					delete(t.m, k)
				}
			}
			t.mu.Unlock()
		}
	}()
}
GO
cd "$WORK/plakar"
go mod edit -replace "go.omarpolo.com/ttlmap=$WORK/ttlmap"
GOFLAGS=-mod=mod go build -o "$WORK/plakar.bin" . >&2
mkdir -p "$CACHE"
mv "$WORK/plakar.bin" "$BIN"
echo "$BIN"
