# Shared by the mount tests (sourced): a fresh image in /dev/shm, a mount in the foreground in the
# background, waiting for it with a timeout, and an unmount on every path out (trap EXIT INT TERM,
# `timeout` on every step, fusermount3 -u -z as the last resort) so a failed test never leaves a
# mount behind. Needs root and /dev/fuse; exits 77 (ctest: skipped) without them.
#   DAXFS       the daxfs command (default: build/release/tools/daxfs)
#   FUSE_PROBE  the fuse_probe helper (default: build/release/tests/fuse/fuse_probe)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DAXFS=${DAXFS:-$ROOT/build/release/tools/daxfs}
FUSE_PROBE=${FUSE_PROBE:-$ROOT/build/release/tests/fuse/fuse_probe}
STEP_TIMEOUT=${STEP_TIMEOUT:-120}

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
  echo "SKIP: mount tests need root, /dev/fuse and fusermount3"
  exit 77
fi

IMG=""          # the current image
MNT=""          # the current mount point
DAEMON_PID=""   # the foreground daemon started by mount_bg
DAEMON_LOG=""
SCRATCH=$(mktemp -d /tmp/daxfs-fuse-test.XXXXXX)
chmod 755 "$SCRATCH"  # other users (setpriv tests) must reach the mount points

say() { echo "== $*"; }
fail() {
  echo "FAILED: $*" >&2
  if [ -n "$DAEMON_LOG" ] && [ -s "$DAEMON_LOG" ]; then
    echo "--- daemon log:" >&2
    tail -n 30 "$DAEMON_LOG" >&2
  fi
  exit 1
}
t() { timeout "$STEP_TIMEOUT" "$@"; }
daxfs() { t "$DAXFS" "$@"; }
probe() { t "$FUSE_PROBE" "$@"; }

is_mounted() {  # is_mounted DIR: a mount (any type) sits at DIR
  awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$MNT" ] && is_mounted "$MNT"; then
    timeout 20 "$DAXFS" umount "$MNT" >/dev/null 2>&1 || fusermount3 -u -z "$MNT" 2>/dev/null ||
      umount -l "$MNT" 2>/dev/null
  fi
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    timeout 20 tail --pid="$DAEMON_PID" -f /dev/null || kill -9 "$DAEMON_PID" 2>/dev/null
  fi
  for d in "$SCRATCH"/mnt*; do
    [ -d "$d" ] && is_mounted "$d" && { fusermount3 -u -z "$d" 2>/dev/null || umount -l "$d"; }
  done
  [ -n "${FUSECTL_MOUNTED:-}" ] && umount /sys/fs/fuse/connections 2>/dev/null
  [ -n "$IMG" ] && rm -f "$IMG" "$IMG.badblocks" "$IMG.events.jsonl"
  rm -rf "$SCRATCH"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# new_image SIZE [mkfs options...]: IMG becomes a fresh image in /dev/shm.
new_image() {
  [ -n "${FUSECTL_MOUNTED:-}" ] && umount /sys/fs/fuse/connections 2>/dev/null
  [ -n "$IMG" ] && rm -f "$IMG" "$IMG.badblocks" "$IMG.events.jsonl"
  IMG=$(mktemp /dev/shm/daxfs-fuse-test.XXXXXX.img)
  rm -f "$IMG"
  daxfs mkfs "$IMG" "$@" >/dev/null
}

# new_mountpoint: MNT becomes a fresh empty directory.
new_mountpoint() {
  MNT=$(mktemp -d "$SCRATCH/mnt.XXXXXX")
}

# wait_mounted DIR [PID]: until DIR is a daxfs mount (10 s at most; fails if PID exits first).
wait_mounted() {
  local dir=$1 pid=${2:-} i
  for i in $(seq 1 400); do
    if awk -v m="$dir" '$5 == m && $0 ~ / - fuse.daxfs / { found = 1 } END { exit !found }' \
        /proc/self/mountinfo; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      fail "the daemon exited before mounting $dir"
    fi
    sleep 0.025
  done
  fail "$dir was not mounted within 10 s"
}

# mount_bg [mount options...]: daxfs mount IMG MNT -f in the background; waits until mounted.
mount_bg() {
  ! is_mounted "$MNT" || fail "mount_bg: $MNT is mounted already"
  DAEMON_LOG="$SCRATCH/daemon.$RANDOM.log"
  # A background job of a script starts with SIGINT ignored (and libfuse then leaves it so):
  # give the daemon the default dispositions, as from a terminal.
  env --default-signal=INT,TERM,HUP "$DAXFS" mount "$IMG" "$MNT" -f "$@" 2>"$DAEMON_LOG" &
  DAEMON_PID=$!
  wait_mounted "$MNT" "$DAEMON_PID"
}

# unmount_wait: daxfs umount MNT, then the daemon must exit with status 0.
unmount_wait() {
  daxfs umount "$MNT" || fail "daxfs umount $MNT"
  wait_daemon 0
}

# wait_daemon EXPECTED_STATUS: the foreground daemon exits with that status.
wait_daemon() {
  local want=$1 rc=0
  timeout 20 tail --pid="$DAEMON_PID" -f /dev/null || fail "the daemon did not exit"
  wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  [ "$rc" -eq "$want" ] || fail "the daemon exited with $rc, expected $want"
}

# image_clean: `daxfs info` says the image was unmounted cleanly; `daxfs check` passes.
image_clean() {
  daxfs info "$IMG" | grep -q ', clean)' || fail "the image is not marked clean"
  daxfs check "$IMG" >/dev/null || fail "daxfs check failed on $IMG"
}

expect() { probe expect "$@" || fail "expect $*"; }
