#!/bin/bash
# The "headers" suite: each public header compiles on its own, included
# twice, as strict C99 and as C++11, so that users with older C compilers or
# C++ code can include it without help.  Every include/*.h is checked; a new
# public header needs no change here.  Prints TAP, and compiler messages on
# stderr.
#
#   check.sh INCLUDE_DIR
#
# $CC is the C compiler command (meson passes its own); $CXX the C++
# compiler, else the first of c++, g++, clang++ found.  Without a C++
# compiler the C++ checks are skipped.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 INCLUDE_DIR" >&2
  exit 2
fi
incdir=$(cd "$1" && pwd)

cc=${CC:-cc}
cxx=${CXX:-}
if [ -z "$cxx" ]; then
  for c in c++ g++ clang++; do
    if command -v "$c" >/dev/null 2>&1; then
      cxx=$c
      break
    fi
  done
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

shopt -s nullglob
headers=("$incdir"/*.h)
if [ ${#headers[@]} -eq 0 ]; then
  echo "Bail out! no headers in $incdir"
  exit 1
fi

n=0
failed=0
# compile WHAT COMMAND...: one TAP line for compiling $tu with COMMAND.
compile() {
  local what=$1
  shift
  n=$((n + 1))
  # $cc and $cxx may hold several words (a launcher, extra flags).
  # shellcheck disable=SC2086
  if "$@" -c "$tu" -o "$tmp/out.o" >"$tmp/log" 2>&1; then
    echo "ok $n - $what"
  else
    failed=1
    echo "not ok $n - $what"
    {
      echo "# not ok $n - $what:"
      sed 's/^/#   /' "$tmp/log"
    } >&2
  fi
}

for h in "${headers[@]}"; do
  name=$(basename "$h")
  # Included twice: the include guard must work.
  tu=$tmp/${name%.h}_c.c
  printf '#include "%s"\n#include "%s"\nint tern_header_check;\n' "$name" "$name" >"$tu"
  # shellcheck disable=SC2086
  compile "$name alone as C99 -pedantic" \
    $cc -std=c99 -pedantic -Werror -Wall -Wextra -I"$incdir"

  tu=$tmp/${name%.h}_cxx.cc
  printf '#include "%s"\n#include "%s"\nint tern_header_check;\n' "$name" "$name" >"$tu"
  if [ -n "$cxx" ]; then
    # shellcheck disable=SC2086
    compile "$name alone as C++11 -pedantic" \
      $cxx -std=c++11 -pedantic -Werror -Wall -Wextra -I"$incdir"
  else
    n=$((n + 1))
    echo "ok $n - $name alone as C++11 -pedantic # SKIP no C++ compiler found"
  fi
done

echo "1..$n"
exit $failed
