#!/bin/sh
# Instructions per delivered message (publish -> write -> ACK -> free),
# counted by callgrind.  Two runs with different message counts cancel the
# setup cost: (I(n2) - I(n1)) / (n2 - n1).
#   usage: bench/callgrind.sh [path/to/bench/core]
set -eu
core=${1:-build/bench/core}
n1=20000
n2=120000
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$core" count "$1" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
i1=$(count $n1)
i2=$(count $n2)
echo "callgrind: $i1 instructions for $n1 messages, $i2 for $n2"
awk -v a="$i1" -v b="$i2" -v n1=$n1 -v n2=$n2 'BEGIN {
  printf "instructions per delivered message: %.0f (target <= 600)\n", (b - a) / (n2 - n1) }'
