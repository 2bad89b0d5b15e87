#!/usr/bin/env bash
# Runs every benchmark recorded in docs/benchmarks.md (release build expected in build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/release
echo "== B+tree micro-benchmarks (Google Benchmark)"
"$B/src/btree/btree_benchmark" --benchmark_min_time=0.5
echo
echo "== daxfs vs LMDB"
"$B/bench/lmdb_compare" "$@"
echo
echo "== Filesystem scenarios vs XFS (the XFS part needs root, a loop device and mkfs.xfs)"
"$B/bench/fs_bench"
echo; echo "== Reflink, owner lookup and the cost of the rmap (the XFS/btrfs parts need root, loop devices, mkfs.xfs/mkfs.btrfs)"; "$B/bench/reflink_bench"
echo; echo "== DAX mappings and failure routing (the XFS part needs root, a loop device, mkfs.xfs)"; "$B/bench/dax_bench"
