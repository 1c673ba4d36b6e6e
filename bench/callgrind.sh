#!/bin/sh
# Instructions per delivered message (publish -> write -> ACK -> free),
# counted by callgrind: one round trip per message, and ten messages per
# write and ACK (a receiver acking every 10, tern_client's default).
#
# "libtern" counts the instructions executed inside the three calls a host
# makes per message (tern_hub_publish, which is tern_hub_publish_versioned
# since 0.2, tern_conn_write, tern_conn_read) and
# everything they call; "whole process" adds the benchmark's own loop and
# its hand-encoded ACKs (the receiver's side).  Two runs with different
# message counts cancel the setup cost: (I(n2) - I(n1)) / (n2 - n1).
#   usage: bench/callgrind.sh [path/to/bench/core]
set -eu
core=${1:-build/bench/core}
n1=20000
n2=120000
count() { # count N BATCH [callgrind options]
  n=$1
  b=$2
  shift 2
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" \
    "$core" count "$n" "$b" 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
per() { # per I1 I2
  awk -v a="$1" -v b="$2" -v n1=$n1 -v n2=$n2 \
    'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }'
}
for batch in 1 10; do
  set -- --collect-atstart=no --toggle-collect=tern_hub_publish_versioned \
    --toggle-collect=tern_conn_write --toggle-collect=tern_conn_read
  lib=$(per "$(count $n1 $batch "$@")" "$(count $n2 $batch "$@")")
  all=$(per "$(count $n1 $batch)" "$(count $n2 $batch)")
  echo "instructions per delivered message, $batch per write and ACK:" \
    "libtern $lib (target <= 600), whole process $all"
done
