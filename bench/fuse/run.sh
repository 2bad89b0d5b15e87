#!/usr/bin/env bash
# The FUSE benchmarks of issue 9 (never run by ctest): the same workloads, in interleaved rounds,
# on three targets set up side by side, reported as medians and ratios in a markdown table:
#   daxfs        the daxfs mount (build/release/tools/daxfs mount IMAGE MNT -f, image in /dev/shm)
#   passthrough  libfuse's passthrough_ll example (built here from Debian's libfuse3-dev
#                examples) over a /dev/shm directory: the FUSE-overhead anchor
#   xfs          XFS (mkfs.xfs -m reflink=1,rmapbt=1) on a loop device over /dev/shm: the kernel
#                anchor
# Workloads: fio 4 KiB random read and write, 1 MiB sequential read and write (psync, buffered,
# time-based), each with 1 and 2 jobs over the same data (job i of N works on the i-th 1/N of
# one file); the metadata workload meta_bench (create, stat and unlink of 100,000 files) with 1
# and 2 threads.
#
#   bench/fuse/run.sh            (as root; build first: cmake --build --preset release
#                                 --target meta_bench daxfs)
# Environment: DAXFS (the daxfs command; default build/release/tools/daxfs), ROUNDS (3),
# RUNTIME (seconds per fio run, 5), FIO_SIZE_MB (256), META_FILES (100000), META_BATCH (10000),
# TARGETS ("daxfs passthrough xfs"), WORKLOADS ("randread randwrite seqread seqwrite meta"),
# DAXFS_MOUNT_OPTS (extra `daxfs mount` options, e.g. "-o sync"), IMAGE_SIZE (4G), OUT (the
# results directory; default build/release/bench/fuse/results-DATE: raw.tsv, table.md, logs).
# META_BATCH: meta_bench keeps at most that many files alive at once (create a batch, stat it,
# unlink it, until META_FILES are done), on every target alike, because passthrough_ll holds one
# O_PATH descriptor per inode the kernel knows and fails with EMFILE beyond RLIMIT_NOFILE (20000
# hard on the machines this was written on, not raisable without CAP_SYS_RESOURCE). Where the
# hard limit allows, META_BATCH=100000 runs the plain all-at-once workload.
# Every mount, daemon and loop device it makes is removed on every exit path (EXIT, INT, TERM,
# HUP traps; each step under `timeout`); the daxfs daemon is unmounted with fusermount3 -u and
# left to unmount its image.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
B=${BUILD:-$ROOT/build/release}
DAXFS=${DAXFS:-$B/tools/daxfs}
META=$B/bench/fuse/meta_bench
PT_BIN=$B/bench/fuse/passthrough_ll
PT_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
ROUNDS=${ROUNDS:-3}
RUNTIME=${RUNTIME:-5}
FIO_SIZE_MB=${FIO_SIZE_MB:-256}
META_FILES=${META_FILES:-100000}
META_BATCH=${META_BATCH:-10000}
TARGETS=${TARGETS:-daxfs passthrough xfs}
WORKLOADS=${WORKLOADS:-randread randwrite seqread seqwrite meta}
DAXFS_MOUNT_OPTS=${DAXFS_MOUNT_OPTS:-}
OUT=${OUT:-$B/bench/fuse/results-$(date +%Y%m%d-%H%M%S)}
IMAGE_SIZE=${IMAGE_SIZE:-4G}

say() { echo "== $*" >&2; }
die() { echo "bench/fuse/run.sh: $*" >&2; exit 1; }

# ---- cleanup on every path -----------------------------------------------------------------

work="" mnt_root="" loop="" child=""
declare -A daemon_pid=()   # target -> FUSE daemon pid
declare -A mnt=()          # target -> mount point (set once mounted or being mounted)
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    say "stopping the running workload (pid $child)"
    kill -TERM "$child" 2>/dev/null
    timeout 20 tail --pid="$child" -f /dev/null
    kill -KILL "$child" 2>/dev/null
  fi
  for t in "${!mnt[@]}"; do
    local m=${mnt[$t]}
    if mountpoint -q "$m" 2>/dev/null; then
      say "unmounting $t ($m)"
      if [ "$t" = xfs ]; then
        timeout 60 umount "$m" || timeout 30 umount -l "$m"
      else
        timeout 60 fusermount3 -u "$m" || timeout 30 fusermount3 -u -z "$m"
      fi
    fi
  done
  for t in "${!daemon_pid[@]}"; do
    local pid=${daemon_pid[$t]}
    if kill -0 "$pid" 2>/dev/null; then
      # After the unmount a daemon exits by itself (daxfs unmounts its image first): give it time.
      timeout 60 tail --pid="$pid" -f /dev/null || { kill -TERM "$pid"; timeout 20 tail --pid="$pid" -f /dev/null; }
      kill -0 "$pid" 2>/dev/null && { say "killing $t daemon $pid"; kill -KILL "$pid"; }
    fi
  done
  if [ -n "$loop" ]; then timeout 30 losetup -d "$loop" || say "losetup -d $loop failed"; fi
  for t in "${!mnt[@]}"; do [ -d "${mnt[$t]}" ] && rmdir "${mnt[$t]}" 2>/dev/null; done
  [ -n "$mnt_root" ] && rmdir "$mnt_root" 2>/dev/null
  [ -n "$work" ] && rm -rf --one-file-system "$work"
  local left
  left=$(grep -c " ${mnt_root:-/nonexistent}/" /proc/self/mountinfo || true)
  [ "$left" = 0 ] || say "WARNING: $left mounts left under $mnt_root"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Runs a command in the background and waits for it, so that a signal interrupts the wait at once
# (the trap then stops the command); `timeout` bounds it.
run() {
  local limit=$1
  shift
  timeout -k 10 "$limit" "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  return $rc
}

# ---- the targets ---------------------------------------------------------------------------

wait_mounted() {  # target pid
  local m=${mnt[$1]} _
  for _ in $(seq 200); do
    if grep -q " $m " /proc/self/mountinfo; then return 0; fi
    kill -0 "$2" 2>/dev/null || { cat "$OUT/$1.log" >&2; die "$1 daemon exited before mounting"; }
    sleep 0.1
  done
  die "$1 not mounted on $m after 20 s"
}

daxfs_available() {
  [ -x "$DAXFS" ] || { echo "no $DAXFS (build the daxfs target)"; return 1; }
  "$DAXFS" mount --help >/dev/null 2>&1 || { echo "$DAXFS has no mount command yet"; return 1; }
}

setup_daxfs() {
  local img=$work/daxfs.img
  mnt[daxfs]=$mnt_root/daxfs
  mkdir "${mnt[daxfs]}"
  timeout 120 "$DAXFS" mkfs "$img" "$IMAGE_SIZE" --label fuse-bench > "$OUT/daxfs.log" 2>&1
  # shellcheck disable=SC2086
  "$DAXFS" mount "$img" "${mnt[daxfs]}" -f $DAXFS_MOUNT_OPTS >> "$OUT/daxfs.log" 2>&1 &
  daemon_pid[daxfs]=$!
  wait_mounted daxfs "${daemon_pid[daxfs]}"
  echo "- daxfs: \`daxfs mount IMAGE MNT -f $DAXFS_MOUNT_OPTS\` (image of $IMAGE_SIZE in /dev/shm)" >> "$OUT/header.md"
}

build_passthrough() {
  [ -r "$PT_SRC" ] || die "no $PT_SRC (install libfuse3-dev)"
  if [ ! -x "$PT_BIN" ] || [ "$PT_SRC" -nt "$PT_BIN" ]; then
    mkdir -p "$(dirname "$PT_BIN")"
    # Debian's example, compiled as its header says, with the fallocate and copy_file_range
    # paths on (both exist on Linux/glibc; without these defines they answer EOPNOTSUPP).
    # shellcheck disable=SC2046
    gcc -O2 -Wall -DHAVE_FALLOCATE -DHAVE_COPY_FILE_RANGE -I"$(dirname "$PT_SRC")" "$PT_SRC" \
      $(pkg-config fuse3 --cflags --libs) -o "$PT_BIN"
  fi
}

setup_passthrough() {
  build_passthrough
  local src=$work/passthrough-src
  mkdir "$src"
  mnt[passthrough]=$mnt_root/passthrough
  mkdir "${mnt[passthrough]}"
  "$PT_BIN" -o source="$src" -f "${mnt[passthrough]}" > "$OUT/passthrough.log" 2>&1 &
  daemon_pid[passthrough]=$!
  wait_mounted passthrough "${daemon_pid[passthrough]}"
  echo "- passthrough_ll: \`passthrough_ll -o source=/dev/shm/DIR -f MNT\` (its defaults: cache=auto, 1 s entry and attribute timeouts, multi-threaded loop; built with -O2 -DHAVE_FALLOCATE -DHAVE_COPY_FILE_RANGE)" >> "$OUT/header.md"
}

setup_xfs() {
  local img=$work/xfs.img
  truncate -s "$IMAGE_SIZE" "$img"
  loop=$(timeout 30 losetup --find --show "$img")
  timeout 120 mkfs.xfs -q -f -m reflink=1,rmapbt=1 "$loop" > "$OUT/xfs.log" 2>&1
  mnt[xfs]=$mnt_root/xfs
  mkdir "${mnt[xfs]}"
  timeout 60 mount -t xfs "$loop" "${mnt[xfs]}"
  echo "- xfs: \`mkfs.xfs -m reflink=1,rmapbt=1\` on a loop device over a sparse $IMAGE_SIZE file in /dev/shm, default mount options" >> "$OUT/header.md"
}

# ---- the workloads -------------------------------------------------------------------------

# One fio run; writes "VALUE UNIT" to $OUT/result: MB/s (10^6 bytes per second) summed over
# the jobs. (Called in the main shell, never in $(...), so that the traps can stop it.)
run_fio() {  # target workload jobs
  local m=${mnt[$1]} rw bs per
  case $2 in
    randread) rw=randread bs=4k ;;
    randwrite) rw=randwrite bs=4k ;;
    seqread) rw=read bs=1M ;;
    seqwrite) rw=write bs=1M ;;
  esac
  per=$((FIO_SIZE_MB / $3))
  run $((RUNTIME * 4 + 120)) fio --name="$2" --filename="$m/fio.dat" --rw=$rw --bs=$bs \
    --size=${per}M --offset_increment=${per}M --numjobs="$3" --ioengine=psync --direct=0 \
    --time_based --runtime="$RUNTIME" --group_reporting --minimal \
    --output="$OUT/fio-$1-$2-$3.last" > /dev/null
  # Terse v3: read KiB total and runtime (ms) are fields 6 and 9, write's 47 and 50.
  awk -F';' -v w="$2" '/^3;/ {
    if (w ~ /read/) { kb = $6; ms = $9 } else { kb = $47; ms = $50 }
    if (ms <= 0) { print "0 MB/s"; exit }
    printf "%.1f MB/s\n", kb * 1.024 / ms }' "$OUT/fio-$1-$2-$3.last" > "$OUT/result"
  [ -s "$OUT/result" ] || die "no fio result for $1 $2 jobs=$3 (see $OUT/fio-$1-$2-$3.last)"
}

prefill() {  # target
  run 600 fio --name=prefill --filename="${mnt[$1]}/fio.dat" --rw=write --bs=1M \
    --size="${FIO_SIZE_MB}M" --ioengine=psync --end_fsync=1 --minimal > /dev/null
}

# One meta_bench pass; writes "create V ops/s", "stat V ops/s", "unlink V ops/s" to $OUT/result.
run_meta() {  # target threads
  run 1800 "$META" "${mnt[$1]}" --files "$META_FILES" --threads "$2" --batch "$META_BATCH" \
    --passes 1 > "$OUT/meta-$1-$2.last"
  awk '/^(create|stat|unlink) / { print $1, $2, $3 }' "$OUT/meta-$1-$2.last" > "$OUT/result"
  [ "$(wc -l < "$OUT/result")" = 3 ] || die "no meta_bench result for $1 threads=$2"
}

# ---- the report ----------------------------------------------------------------------------

# raw.tsv rows: round target workload jobs value unit. The table: medians per target, workload
# and jobs; each value's ratio to passthrough_ll's and XFS's value of the same row; on 2-job rows
# the scaling from 1 to 2 jobs of that target.
report() {
  awk -F'\t' '
    function median(key,   n, i, j, t, v) {
      n = split(vals[key], v, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    function spread(key,   n, i, v, lo, hi) {
      n = split(vals[key], v, " "); lo = hi = v[1]
      for (i = 2; i <= n; i++) { if (v[i] + 0 < lo + 0) lo = v[i]; if (v[i] + 0 > hi + 0) hi = v[i] }
      return sprintf("%s–%s", fmt(lo), fmt(hi))
    }
    function fmt(x) { return x >= 1000 ? sprintf("%.0f", x) : x >= 100 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
    function ratio(a, b) { return (b == "" || b + 0 == 0 || a == "") ? "—" : sprintf("%.2f×", a / b) }
    {
      key = $2 SUBSEP $3 SUBSEP $4
      vals[key] = vals[key] " " $5
      unit[$3] = $6
      if (!(($3 SUBSEP $4) in seenrow)) { seenrow[$3 SUBSEP $4] = 1; rows[++nrows] = $3 SUBSEP $4 }
      if (!($2 in seent)) { seent[$2] = 1; targets[++nt] = $2 }
    }
    END {
      print "| workload | jobs | target | median | unit | rounds (min–max) | ÷ passthrough_ll | ÷ xfs | 2 jobs ÷ 1 job |"
      print "|---|---|---|---|---|---|---|---|---|"
      for (r = 1; r <= nrows; r++) {
        split(rows[r], rk, SUBSEP); w = rk[1]; j = rk[2]
        pt = ((("passthrough" SUBSEP w SUBSEP j) in vals) ? median("passthrough" SUBSEP w SUBSEP j) : "")
        xf = ((("xfs" SUBSEP w SUBSEP j) in vals) ? median("xfs" SUBSEP w SUBSEP j) : "")
        for (i = 1; i <= nt; i++) {
          t = targets[i]; key = t SUBSEP w SUBSEP j
          if (!(key in vals)) continue
          m = median(key)
          one = t SUBSEP w SUBSEP 1
          sc = (j == 2 && (one in vals)) ? ratio(m, median(one)) : ""
          name = t == "passthrough" ? "passthrough_ll" : t
          printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w, j, name, fmt(m), unit[w], spread(key),
            ratio(m, pt), ratio(m, xf), sc
        }
      }
    }' "$OUT/raw.tsv"
}

# ---- main ----------------------------------------------------------------------------------

[ "$(id -u)" -eq 0 ] || die "needs root (FUSE mounts, loop devices)"
[ -c /dev/fuse ] || die "no /dev/fuse"
for tool in fio fusermount3 mkfs.xfs losetup gcc pkg-config awk; do
  command -v "$tool" >/dev/null || die "$tool not found (packages: fio fuse3 libfuse3-dev xfsprogs util-linux gcc pkg-config)"
done
[ -x "$META" ] || die "no $META (cmake --build --preset release --target meta_bench)"

mkdir -p "$OUT"
work=$(mktemp -d /dev/shm/fuse-bench.XXXXXX)
mnt_root=$(mktemp -d /tmp/fuse-bench.XXXXXX)
: > "$OUT/raw.tsv"

{
  echo "# FUSE benchmarks (bench/fuse/run.sh), $(date -u +'%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $("$META" --machine)"
  echo "- software: $(fio --version), libfuse $(pkg-config --modversion fuse3), $(mkfs.xfs -V | head -1)," \
    "daxfs $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- runs: $ROUNDS interleaved rounds; fio: ${RUNTIME} s time-based per run, psync, --direct=0," \
    "one ${FIO_SIZE_MB} MiB file per target written once beforehand, N jobs each on its own 1/N of it;" \
    "meta_bench: $META_FILES files per run (create all, stat all, unlink all, at most $META_BATCH alive at once)"
} > "$OUT/header.md"

declare -a active=()
for t in $TARGETS; do
  case $t in
    daxfs)
      if why=$(daxfs_available); then
        say "setting up daxfs"; setup_daxfs; active+=(daxfs)
      else
        say "daxfs: not available ($why)"; echo "- daxfs: not available ($why)" >> "$OUT/header.md"
      fi
      ;;
    passthrough)
      say "setting up passthrough_ll"; setup_passthrough; active+=(passthrough)
      ;;
    xfs)
      say "setting up xfs"; setup_xfs; active+=(xfs)
      ;;
    *) die "unknown target $t (daxfs, passthrough, xfs)" ;;
  esac
done
[ ${#active[@]} -gt 0 ] || die "no target could be set up"

for t in "${active[@]}"; do
  case " $WORKLOADS " in *" randread "*|*" randwrite "*|*" seqread "*|*" seqwrite "*)
    say "$t: writing the ${FIO_SIZE_MB} MiB fio file"; prefill "$t" ;;
  esac
done

for r in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    for j in 1 2; do
      for t in "${active[@]}"; do
        if [ "$w" = meta ]; then
          run_meta "$t" "$j"
          while read -r phase value unit; do
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "meta-$phase" "$j" "$value" "$unit" >> "$OUT/raw.tsv"
            say "round $r/$ROUNDS $t meta-$phase jobs=$j: $value $unit"
          done < "$OUT/result"
        else
          run_fio "$t" "$w" "$j"
          read -r value unit < "$OUT/result"
          printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t" "$w" "$j" "$value" "$unit" >> "$OUT/raw.tsv"
          say "round $r/$ROUNDS $t $w jobs=$j: $value $unit"
        fi
      done
    done
  done
done

{
  cat "$OUT/header.md"
  echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  report
} > "$OUT/table.md"
cat "$OUT/table.md"
say "results in $OUT (raw.tsv, table.md)"
