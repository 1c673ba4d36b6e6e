#!/bin/bash
# The "install" test: the examples build against an installed libtern
# alone.  Installs the build into a temporary DESTDIR (meson install
# --destdir), asks pkg-config for the flags there (PKG_CONFIG_LIBDIR and
# PKG_CONFIG_SYSROOT_DIR point it into the DESTDIR, away from any libtern
# installed on the machine), compiles every examples/*.c with nothing else
# on the include path, and runs hello against the installed shared
# library.  Prints TAP.
#
#   check_install.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR
#
# PREFIX and LIBDIR are meson's prefix and libdir options (LIBDIR absolute,
# or relative to PREFIX).  $CC is the C compiler command (meson passes its
# own); $SANITIZE the build's b_sanitize option (a library built with
# sanitizers needs programs built with them too).  Skips without pkg-config.
set -u

if [ $# -ne 4 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR PREFIX LIBDIR" >&2
  exit 2
fi
build=$1 src=$2 prefix=$3 libdir=$4
case $libdir in
/*) ;;
*) libdir=$prefix/$libdir ;;
esac
cc=${CC:-cc}
sanflags=
if [ -n "${SANITIZE:-}" ] && [ "$SANITIZE" != none ]; then
  sanflags=-fsanitize=$SANITIZE
fi

if ! command -v pkg-config >/dev/null 2>&1; then
  echo "1..0 # SKIP pkg-config not installed"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
destdir=$tmp/root

shopt -s nullglob
examples=("$src"/examples/*.c)
echo "1..$((${#examples[@]} + 5))"
n=0
fail=0
ok() {
  n=$((n + 1))
  echo "ok $n - $1"
}
not_ok() {
  n=$((n + 1))
  fail=1
  echo "not ok $n - $1"
}

if meson install -C "$build" --no-rebuild --quiet --destdir "$destdir" \
  >"$tmp/install.log" 2>&1; then
  ok "meson install --destdir"
else
  not_ok "meson install --destdir"
  sed 's/^/# /' "$tmp/install.log"
fi

export PKG_CONFIG_PATH=
export PKG_CONFIG_LIBDIR=$destdir$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$destdir
if flags=$(pkg-config --cflags --libs libtern) &&
  [[ " $flags " == *" -L$destdir"* ]]; then
  ok "pkg-config --cflags --libs libtern: $flags"
else
  not_ok "pkg-config finds libtern in the DESTDIR (got: ${flags:-nothing})"
  flags=
fi

# Linux-only examples build on Linux only, as in examples/meson.build.
for f in "${examples[@]}"; do
  name=$(basename "$f" .c)
  if [[ $name == tcp_* ]] && [ "$(uname -s)" != Linux ]; then
    ok "$name # SKIP not Linux"
    continue
  fi
  # shellcheck disable=SC2086 # $cc and $flags are word lists
  if $cc -std=c11 -Wall -Wextra -Werror $sanflags -o "$tmp/$name" "$f" $flags \
    >"$tmp/$name.log" 2>&1; then
    ok "$name compiles against the installed header and library"
  else
    not_ok "$name compiles against the installed header and library"
    sed 's/^/# /' "$tmp/$name.log"
  fi
done

# ternd (examples/ternd/*.c) builds against the installed tern.h,
# tern_posix.h and libtern-posix alone, and was installed itself.
if [ "$(uname -s)" != Linux ]; then
  ok "ternd # SKIP not Linux"
  ok "ternd installed # SKIP not Linux"
else
  # shellcheck disable=SC2046 # word lists
  if pflags=$(pkg-config --cflags --libs libtern-posix) &&
    $cc -std=c11 -Wall -Wextra -Werror $sanflags -o "$tmp/ternd" \
      "$src"/examples/ternd/*.c $pflags >"$tmp/ternd.log" 2>&1; then
    ok "ternd compiles against the installed headers and libtern-posix"
  else
    not_ok "ternd compiles against the installed headers and libtern-posix"
    sed 's/^/# /' "$tmp/ternd.log"
  fi
  if compgen -G "$destdir$prefix/*/ternd" >/dev/null; then
    ok "ternd is installed"
  else
    not_ok "ternd is installed"
  fi
fi

# hello runs with the installed shared library, not the build's.
libpath=
for f in $flags; do
  case $f in -L*) libpath=${f#-L} ;; esac
done
if [ -x "$tmp/hello" ] && [ -n "$libpath" ] &&
  LD_LIBRARY_PATH=$libpath "$tmp/hello" >"$tmp/hello.log" 2>&1 &&
  LD_LIBRARY_PATH=$libpath ldd "$tmp/hello" 2>/dev/null |
  grep -q "libtern.* => $destdir"; then
  ok "hello runs against the installed libtern"
else
  not_ok "hello runs against the installed libtern"
  sed 's/^/# /' "$tmp/hello.log" 2>/dev/null
fi
exit $fail
