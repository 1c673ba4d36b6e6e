#!/bin/sh
# Runs the Go binding's checks against the library meson just built:
# go vet, then go test -race over the binding and its examples.
#
#   run_tests.sh GO SOURCE_DIR BUILD_ROOT SANITIZE
#
# cgo finds libtern through pkg-config: PKG_CONFIG_PATH points at the
# build's meson-uninstalled directory (libtern-uninstalled.pc and, on
# Linux, libtern-posix-uninstalled.pc), and the test binaries load
# build/lib/libtern.so and libtern-posix.so through LD_LIBRARY_PATH.
# Exit 77 (skipped) for a sanitizer build: a Go program cannot load a
# library built with -fsanitize without the sanitizer runtime preloaded.
set -eu
go=$1
src=$2
build=$3
sanitize=${4:-none}

if [ "$sanitize" != none ]; then
  echo "skip: libtern is built with -fsanitize=$sanitize"
  exit 77
fi

PKG_CONFIG_PATH="$build/meson-uninstalled${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CGO_ENABLED=1
GOFLAGS="${GOFLAGS:--p=2}"
GOPROXY=off
GO111MODULE=on
export PKG_CONFIG_PATH LD_LIBRARY_PATH CGO_ENABLED GOFLAGS GOPROXY GO111MODULE
# The build cache makes every run after the first fast; without a usable
# home, keep it in the build directory.
if [ -z "${HOME:-}" ] || [ ! -w "${HOME:-/nonexistent}" ]; then
  GOCACHE="$build/bindings/go/cache"
  GOPATH="$build/bindings/go/gopath"
  export GOCACHE GOPATH
fi

cd "$src"
"$go" version
"$go" vet ./...
race=
case "$("$go" env GOOS)/$("$go" env GOARCH)" in
  linux/amd64|linux/arm64|linux/ppc64le|linux/s390x|darwin/*|freebsd/amd64)
    race=-race ;;
esac
exec "$go" test $race -count=1 ./...
