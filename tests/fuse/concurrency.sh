#!/usr/bin/env bash
# A concurrency smoke against a mount (DIR, default $DAXFS_MNT): threads writing, reading back,
# renaming and unlinking their own files while others read a shared file (fuse_probe stress),
# and at the same time several processes copying and comparing, listing and appending.
set -euo pipefail
DIR=${1:-${DAXFS_MNT:?give a directory or set DAXFS_MNT}}
HERE=$(cd "$(dirname "$0")" && pwd)
FUSE_PROBE=${FUSE_PROBE:-$HERE/../../build/release/tests/fuse/fuse_probe}
fail() { echo "FAILED (concurrency.sh): $*" >&2; exit 1; }
W=$(mktemp -d "$DIR/conc.XXXXXX")
trap 'cd /; rm -rf "$W"' EXIT
mkdir "$W/stress" "$W/copies"
head -c 2M /dev/urandom > "$W/seed"
pids=()
"$FUSE_PROBE" stress "$W/stress" 8 40 & pids+=($!)
for p in 1 2 3; do
  ( for i in $(seq 1 10); do
      cp "$W/seed" "$W/copies/$p.$i" && cmp "$W/seed" "$W/copies/$p.$i" && rm "$W/copies/$p.$i" ||
        exit 1
    done ) & pids+=($!)
done
( for i in $(seq 1 200); do echo "line $i" >> "$W/appended"; done ) & pids+=($!)
# Listings of a directory whose names stay (entries come and go only below it).
( for i in $(seq 1 50); do ls -l "$W" > /dev/null || exit 1; done ) & pids+=($!)
for pid in "${pids[@]}"; do wait "$pid" || fail "a worker failed (pid $pid)"; done
[ "$(wc -l < "$W/appended")" = 200 ] || fail "appends lost: $(wc -l < "$W/appended") lines"
[ "$(sed -n '200p' "$W/appended")" = "line 200" ] || fail "appends out of order"
[ -z "$(ls "$W/copies")" ] || fail "copies left behind"
rm -rf "$W"
echo "concurrency.sh: all checks passed"
