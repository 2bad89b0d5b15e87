#!/usr/bin/env bash
# Runs every benchmark recorded in docs/benchmarks.md (release build expected in build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/release
echo "== B+tree micro-benchmarks (Google Benchmark)"
"$B/src/btree/btree_benchmark" --benchmark_min_time=0.5
echo
echo "== Pool commits with and without metadata twins (issue 12, pool level)"
"$B/src/txn/pool_benchmark" --benchmark_min_time=0.5 --benchmark_repetitions=7 \
    --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
echo
echo "== daxfs vs LMDB"
"$B/bench/lmdb_compare" "$@"
echo
echo "== Filesystem scenarios vs XFS (the XFS part needs root, a loop device and mkfs.xfs)"
"$B/bench/fs_bench"
echo; echo "== Reflink, owner lookup and the cost of the rmap (the XFS/btrfs parts need root, loop devices, mkfs.xfs/mkfs.btrfs)"; "$B/bench/reflink_bench"
echo; echo "== DAX mappings and failure routing (the XFS part needs root, a loop device, mkfs.xfs)"; "$B/bench/dax_bench"
echo; echo "== Direct access from other processes: client mappings, map cost, notification latency"; "$B/bench/client_bench"
echo; echo "== Mounted: daxfs behind FUSE vs passthrough_ll and XFS (needs root, /dev/fuse, fuse3, libfuse3-dev, fio, mkfs.xfs; ROUNDS, RUNTIME: see bench/fuse/run.sh)"
if [ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ]; then
  BUILD=$PWD/$B bench/fuse/run.sh
else
  echo "skipped: bench/fuse/run.sh needs root and /dev/fuse"
fi
echo; echo "== Metadata twins vs --no-metadata-dup on filesystem workloads; scrub read rate vs memcpy"; "$B/bench/metadup_bench"
