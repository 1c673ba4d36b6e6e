#!/bin/sh
# Instructions per delivered message (publish -> write -> ACK -> free),
# counted by callgrind: one round trip per message, and ten messages per
# write and ACK (a receiver acking every 10, tern_client's default).  Two runs with different message counts cancel the
# setup cost: (I(n2) - I(n1)) / (n2 - n1).
#   usage: bench/callgrind.sh [path/to/bench/core]
set -eu
core=${1:-build/bench/core}
n1=20000
n2=120000
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$core" count "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for batch in 1 10; do
  i1=$(count $n1 $batch)
  i2=$(count $n2 $batch)
  echo "callgrind, $batch per write and ACK: $i1 instructions for $n1 messages, $i2 for $n2"
  awk -v a="$i1" -v b="$i2" -v n1=$n1 -v n2=$n2 -v batch=$batch 'BEGIN {
    printf "instructions per delivered message, %d per write and ACK: %.0f (target <= 600)\n", batch, (b - a) / (n2 - n1) }'
done
