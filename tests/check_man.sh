#!/bin/bash
# The "man" suite: the manual is part of the API.  Checks that
#   - every man/*.[0-9] page is clean under mandoc -Tlint (any message fails,
#     except "referenced manual not found" for a page that is not ours: the
#     machine running the tests need not have other projects' pages, and
#     mandoc cannot see our pages before they are installed, so references
#     to them are resolved here against man/ instead);
#   - every function declared with TERN_EXTERN in include/*.h is listed by
#     .Nm in the NAME section, or by .Fn/.Fo in the SYNOPSIS, of some page;
#   - the build installs every page (man/meson.build), to its section.
# Prints TAP, and the reasons for failures on stderr (which meson test
# --print-errorlogs shows); skips everything when mandoc is not installed.
#
#   check_man.sh SOURCE_ROOT BUILD_ROOT
#
# $MANDOC overrides the mandoc program.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 SOURCE_ROOT BUILD_ROOT" >&2
  exit 2
fi
src=$1 build=$2
here=$(cd "$(dirname "$0")" && pwd)
mandoc=${MANDOC:-mandoc}

if ! command -v "$mandoc" >/dev/null 2>&1; then
  echo "1..0 # SKIP mandoc not found"
  exit 0
fi

shopt -s nullglob
pages=("$src"/man/*.[0-9])
if [ ${#pages[@]} -eq 0 ]; then
  echo "Bail out! no pages in $src/man"
  exit 1
fi

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }

# names PAGE: what the page documents, one "name section" a line: its own
# file name, every .Nm of its NAME section and every .Fn/.Fo of its SYNOPSIS.
names() {
  local base=${1##*/}
  awk -v base="$base" '
    BEGIN {
      sec = base; sub(/^.*\./, "", sec)
      name = base; sub(/\.[^.]*$/, "", name)
      print name, sec
    }
    /^\.Sh[ \t]/ { sh = $2; next }
    sh == "NAME" && $1 == ".Nm" {
      for (i = 2; i <= NF; i++)
        if ($i ~ /^[A-Za-z_][A-Za-z0-9_.-]*$/) print $i, sec
    }
    sh == "SYNOPSIS" && ($1 == ".Fn" || $1 == ".Fo") && NF >= 2 {
      f = $2; gsub(/"/, "", f); print f, sec
    }
  ' "$1"
}

documented=$(for p in "${pages[@]}"; do names "$p"; done | LC_ALL=C sort -u)

# mandoc -Tlint, one test per page.
for p in "${pages[@]}"; do
  page=man/${p##*/}
  # From the source root, so that messages name the page man/NAME.N.
  out=$(cd "$src" && "$mandoc" -Tlint "$page" 2>&1)
  rc=$?
  msgs=""
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    # About the host's own mandoc.db, not about this page.
    case $line in *"outdated mandoc.db"*) continue ;; esac
    # mandoc reports a repeated message once, with " (N times)".
    if [[ $line =~ referenced\ manual\ not\ found:\ Xr\ ([^ ]+)\ ([^ ]+)(\ \([0-9]+\ times\))?$ ]]; then
      ref="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
      # Ours and present in man/: fine.
      if grep -qxF "$ref" <<<"$documented"; then
        continue
      fi
      # Not ours: the host may or may not have it.
      case ${BASH_REMATCH[1]} in
        tern | tern[_-]* | ternd) ;;
        *) continue ;;
      esac
    fi
    msgs+="$line"$'\n'
  done <<<"$out"
  if [ -z "$msgs" ] && [ $rc -lt 5 ]; then
    ok "$page is clean under mandoc -Tlint"
  else
    notok "$page is clean under mandoc -Tlint"
    [ -n "$msgs" ] && printf '%s' "$msgs" | sed 's/^/#   /' >&2
    [ $rc -lt 5 ] || echo "#   mandoc exited with status $rc on $page" >&2
  fi
done

# Every exported function has a page.
headers=("$src"/include/*.h)
if [ ${#headers[@]} -eq 0 ] ||
  ! funcs=$("$here"/check_symbols.sh --declared "${headers[@]}"); then
  notok "the public headers can be parsed"
else
  for f in $funcs; do
    if grep -qxF "$f 3" <<<"$documented"; then
      ok "$f has a page in section 3"
    else
      notok "$f has a page in section 3"
      echo "#   no man/*.3 lists $f with .Nm in NAME or .Fn in SYNOPSIS" >&2
    fi
  done
fi

# Every page is installed, into man<section>/.  Meson records what it
# installs in meson-info/intro-installed.json: {"source": "destination", ...}.
installed_json=$build/meson-info/intro-installed.json
if [ ! -f "$installed_json" ]; then
  notok "the build records what it installs"
  echo "#   $installed_json is missing" >&2
else
  installed=$(grep -o '"[^"]*": *"[^"]*"' "$installed_json" | sed 's/": *"/ /; s/"//g')
  for p in "${pages[@]}"; do
    base=${p##*/}
    sec=${base##*.}
    if awk -v f="/man/$base" -v d="/man$sec/$base" '
         substr($1, length($1) - length(f) + 1) == f &&
         substr($2, length($2) - length(d) + 1) == d { found = 1 }
         END { exit !found }' <<<"$installed"; then
      ok "man/$base is installed into man$sec"
    else
      notok "man/$base is installed into man$sec"
      echo "#   man/$base is not installed into man$sec: add it to man/meson.build" >&2
    fi
  done
fi

echo "1..$n"
exit $failed
