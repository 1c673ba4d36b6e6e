#!/bin/bash
# The "symbols" suite: the functions libtern.so exports must be exactly the
# functions include/tern.h declares with TERN_EXTERN, and exactly the names in
# the version script lib/libtern.map.  A function declared but not exported
# breaks linking for users; one exported but not declared becomes ABI by
# accident.  With OLD_H, headers of earlier releases (tests/abi/tern_v1.h),
# every function they declare must still be exported: programs built
# against them keep linking.  A name tern.h now defines as a macro (the
# versioned structs) is still declared there as a function, so the three
# lists above keep it too.  Prints TAP.
#
#   check_symbols.sh LIBTERN_SO TERN_H LIBTERN_MAP [OLD_H...]
#   check_symbols.sh --declared HEADER...   (print the declared names; the
#                                            man suite uses this too)
#
# $NM overrides the nm program.
set -u

# declared HEADER...: names declared with TERN_EXTERN, one a line, sorted.
# Comments and preprocessor lines are dropped, the rest is split into
# declarations at ';', and in each declaration that starts with TERN_EXTERN
# the name is the identifier before the first '(' (a function) or the last
# identifier (a variable).
declared() {
  awk '
    function flush(decl,   name) {
      if (decl !~ /^[ \t]*TERN_EXTERN[ \t]/)
        return
      if (decl ~ /\(/) {
        sub(/[ \t]*\(.*/, "", decl)
      } else {
        sub(/[ \t]*(\[[^]]*\])?[ \t]*(=.*)?$/, "", decl)
      }
      if (match(decl, /[A-Za-z_][A-Za-z0-9_]*$/)) {
        print substr(decl, RSTART, RLENGTH)
      } else {
        printf "cannot find the name in: %s\n", decl > "/dev/stderr"
        bad = 1
      }
    }
    FNR == 1 { incomment = 0; inpp = 0; buf = "" }
    {
      line = $0
      # a preprocessor line, with its backslash continuations
      if (inpp || (!incomment && line ~ /^[ \t]*#/)) {
        inpp = (line ~ /\\$/)
        next
      }
      out = ""
      while (line != "") {
        if (incomment) {
          i = index(line, "*/")
          if (i == 0) { line = ""; break }
          line = substr(line, i + 2)
          incomment = 0
        } else {
          i = index(line, "/*")
          j = index(line, "//")
          if (j > 0 && (i == 0 || j < i)) { out = out substr(line, 1, j - 1); line = ""; break }
          if (i == 0) { out = out line; line = ""; break }
          out = out substr(line, 1, i - 1) " "
          line = substr(line, i + 2)
          incomment = 1
        }
      }
      buf = buf " " out
      while ((k = index(buf, ";")) > 0) {
        flush(substr(buf, 1, k - 1))
        buf = substr(buf, k + 1)
      }
      # extern "C" { and closing braces are not declarations
      gsub(/extern[ \t]*"C"[ \t]*\{|[{}]/, " ", buf)
    }
    END { exit bad }
  ' "$@" | LC_ALL=C sort
}

# mapped MAP: the names in the global: parts of a version script's nodes,
# sorted.  A node ends at its '}' (then comes the name of the node it
# inherits, which is no symbol).
mapped() {
  # shellcheck disable=SC2020
  sed -e 's|#.*||' "$1" | tr '\n' ' ' |
    sed -E 's@/\*([^*]|\*+[^*/])*\*+/@ @g' | sed 's/[{}]/ & /g' |
    tr ' \t;' '\n\n\n' | awk '
    $0 == "" { next }
    $0 == "{" || $0 == "}" { g = 0; next }
    $0 == "global:" { g = 1; next }
    $0 == "local:" { g = 0; next }
    $0 ~ /:$/ { g = 0; next }
    g { print }
  ' | LC_ALL=C sort
}

# exported SO: defined dynamic symbols, without version nodes (type A).
exported() {
  "${NM:-nm}" -D --defined-only "$1" | awk 'NF >= 3 && $2 != "A" { sub(/@.*/, "", $3); print $3 }' |
    LC_ALL=C sort -u
}

if [ "${1:-}" = "--declared" ]; then
  shift
  declared "$@"
  exit
fi

if [ $# -lt 3 ]; then
  echo "usage: $0 LIBTERN_SO TERN_H LIBTERN_MAP [OLD_H...]" >&2
  exit 2
fi
so=$1 header=$2 map=$3
shift 3

n=0
failed=0
# check WHAT LEFT_NAME LEFT RIGHT_NAME RIGHT: one TAP line saying whether the
# two sorted lists are equal.  The names in only one of them go to stderr,
# which meson test --print-errorlogs shows.
check() {
  n=$((n + 1))
  local only_left only_right name
  only_left=$(LC_ALL=C comm -23 <(printf '%s\n' "$3") <(printf '%s\n' "$5") | sed '/^$/d')
  only_right=$(LC_ALL=C comm -13 <(printf '%s\n' "$3") <(printf '%s\n' "$5") | sed '/^$/d')
  if [ -z "$only_left" ] && [ -z "$only_right" ] && [ -n "$3" ]; then
    echo "ok $n - $1"
  else
    failed=1
    echo "not ok $n - $1"
    {
      echo "# not ok $n - $1:"
      [ -n "$3" ] || echo "#   $2 is empty"
      for name in $only_left; do echo "#   only in $2: $name"; done
      for name in $only_right; do echo "#   only in $4: $name"; done
    } >&2
  fi
}

decl=$(declared "$header") || { echo "Bail out! cannot parse $header"; exit 1; }
dups=$(printf '%s\n' "$decl" | uniq -d)
n=$((n + 1))
if [ -z "$dups" ]; then
  echo "ok $n - $(basename "$header") declares each function once"
else
  failed=1
  echo "not ok $n - $(basename "$header") declares each function once"
  for name in $dups; do echo "#   declared twice in $header: $name"; done >&2
fi
decl=$(printf '%s\n' "$decl" | uniq)

map_names=$(mapped "$map")
check "$(basename "$map") lists exactly the TERN_EXTERN functions" \
  "$(basename "$header")" "$decl" "$(basename "$map")" "$map_names"

if ! exports=$(exported "$so"); then
  echo "Bail out! ${NM:-nm} failed on $so"
  exit 1
fi
check "$(basename "$so") exports exactly the TERN_EXTERN functions" \
  "$(basename "$header")" "$decl" "$(basename "$so")" "$exports"

for old in "$@"; do
  old_decl=$(declared "$old" | uniq) || { echo "Bail out! cannot parse $old"; exit 1; }
  n=$((n + 1))
  gone=$(LC_ALL=C comm -23 <(printf '%s\n' "$old_decl") <(printf '%s\n' "$exports") | sed '/^$/d')
  if [ -n "$old_decl" ] && [ -z "$gone" ]; then
    echo "ok $n - $(basename "$so") still exports every function of $(basename "$old")"
  else
    failed=1
    echo "not ok $n - $(basename "$so") still exports every function of $(basename "$old")"
    {
      [ -n "$old_decl" ] || echo "#   $old declares nothing"
      for name in $gone; do echo "#   no longer exported: $name"; done
    } >&2
  fi
done

echo "1..$n"
exit $failed
