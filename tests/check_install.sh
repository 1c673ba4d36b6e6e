#!/bin/bash
# The "install" test: the examples build against an installed libtern
# alone.  Installs the build into a temporary DESTDIR (meson install
# --destdir), asks pkg-config for the flags there (PKG_CONFIG_LIBDIR and
# PKG_CONFIG_SYSROOT_DIR point it into the DESTDIR, away from any libtern
# installed on the machine), compiles every examples/*.c with nothing else
# on the include path (those that include tern_posix.h with the flags of
# libtern-posix, on Linux), and runs hello, and posix_hello, against the
# installed shared libraries.  Also checks that every function the
# installed headers declare has an installed man page of its name
# (a page or a link to its family's page).  Prints TAP.
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

# libtern-posix (Linux): its header, its .pc, which pulls in libtern.
posix_flags=
if [ "$(uname -s)" = Linux ]; then
  if posix_flags=$(pkg-config --cflags --libs libtern-posix) &&
    [[ " $posix_flags " == *" -L$destdir"* ]] &&
    [[ " $posix_flags " == *" -ltern-posix "* ]] &&
    [[ " $posix_flags " == *" -ltern "* ]] &&
    [ -n "$(find "$destdir" -path '*/include/tern_posix.h')" ]; then
    ok "pkg-config --cflags --libs libtern-posix: $posix_flags"
  else
    not_ok "libtern-posix, its header and its .pc are installed (got: ${posix_flags:-nothing})"
    posix_flags=
  fi
fi

# Linux-only examples build on Linux only, as in examples/meson.build.
for f in "${examples[@]}"; do
  name=$(basename "$f" .c)
  uses=$flags
  if grep -q '#include <tern_posix.h>' "$f"; then
    uses="$posix_flags -pthread"
  fi
  if { [[ $name == tcp_* || $name == embed_* || $uses != "$flags" ]]; } &&
    [ "$(uname -s)" != Linux ]; then
    ok "$name # SKIP not Linux"
    continue
  fi
  # shellcheck disable=SC2086 # $cc and $uses are word lists
  if $cc -std=c11 -Wall -Wextra -Werror $sanflags -o "$tmp/$name" "$f" $uses \
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
# posix_hello runs with the installed libtern-posix and libtern: a server
# on the epoll loop and a receiver over 127.0.0.1.
if [ "$(uname -s)" = Linux ] && [ -f "$src/examples/posix_hello.c" ]; then
  if [ -x "$tmp/posix_hello" ] && [ -n "$libpath" ] &&
    LD_LIBRARY_PATH=$libpath "$tmp/posix_hello" >"$tmp/posix_hello.log" 2>&1 &&
    LD_LIBRARY_PATH=$libpath ldd "$tmp/posix_hello" 2>/dev/null |
    grep -q "libtern-posix.* => $destdir"; then
    ok "posix_hello runs against the installed libtern-posix"
  else
    not_ok "posix_hello runs against the installed libtern-posix"
    sed 's/^/# /' "$tmp/posix_hello.log" 2>/dev/null
  fi
fi

# "man NAME" finds a page for every function of the installed headers.
man3=$(find "$destdir" -type d -path '*/man/man3' | head -n 1)
headers=()
while IFS= read -r h; do headers+=("$h"); done < <(find "$destdir" -name 'tern*.h')
if [ -z "$man3" ] || [ ${#headers[@]} -eq 0 ] ||
  ! funcs=$("$src"/tests/check_symbols.sh --declared "${headers[@]}"); then
  not_ok "the man pages and headers are installed"
else
  missing=
  for f in $funcs; do
    [ -e "$man3/$f.3" ] || missing="$missing $f"
  done
  if [ -z "$missing" ]; then
    ok "every installed function has an installed page or link in man3 ($(wc -w <<<"$funcs") functions)"
  else
    not_ok "every installed function has an installed page or link in man3"
    echo "#   missing:$missing"
  fi
fi

echo "1..$n"
exit $fail
