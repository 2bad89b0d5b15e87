#!/usr/bin/env bash
# Runs a command against a fresh, private filesystem and removes that filesystem afterwards on
# every path (normal exit, failure, SIGINT, SIGTERM, timeout): nothing stays mounted or attached.
#
#   tests/posix/with-fs.sh tmpfs|xfs [--size SIZE] -- COMMAND [ARGS...]
#
# In ARGS, @DIR@ becomes a fresh directory (mode 0755) on the new filesystem and @OTHER@ a
# directory on a second, different filesystem (for EXDEV checks); both are also exported as
# DAXFS_FS_DIR and DAXFS_FS_OTHER.
#   tmpfs  as root: a private tmpfs mount (SIZE, default 1G); otherwise a fresh directory in /dev/shm
#   xfs    as root: mkfs.xfs -m reflink=1,rmapbt=1 on a loop device over a sparse file in /dev/shm
#          (SIZE, default 1G); exits 77 (ctest: skipped) when that is not possible here
# The second filesystem is a small tmpfs mount (as root) or /tmp (otherwise).
# COMMAND runs under `timeout` ($DAXFS_FS_TIMEOUT seconds, default 1200); its exit status is ours.
set -euo pipefail

usage() { sed -n '2,17p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
kind=$1
shift
size=1G
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ "${1:-}" = "--" ] || usage
shift
[ $# -ge 1 ] || usage
case "$kind" in tmpfs|xfs) ;; *) usage ;; esac

skip() { echo "with-fs.sh: skipped: $*" >&2; exit 77; }
say() { echo "with-fs.sh: $*" >&2; }

work="" mnt="" other="" loop="" image="" child=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  # Processes of a killed command may take a moment to go; retry before detaching lazily.
  for m in "$mnt" "$other"; do
    [ -n "$m" ] || continue
    for _ in $(seq 100); do
      mountpoint -q "$m" || break
      timeout 60 umount "$m" 2>/dev/null && break
      sleep 0.1
    done
    if mountpoint -q "$m"; then
      say "umount $m failed (busy): detaching lazily"
      umount -l "$m"
    fi
  done
  if [ -n "$loop" ]; then timeout 60 losetup -d "$loop" || say "losetup -d $loop failed"; fi
  [ -n "$image" ] && rm -f "$image"
  if [ -n "$work" ] && ! mountpoint -q "$mnt" 2>/dev/null && ! mountpoint -q "$other" 2>/dev/null; then
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

root=false
[ "$(id -u)" -eq 0 ] && root=true

if $root; then
  work=$(mktemp -d /tmp/daxfs-fs.XXXXXX)
  chmod 0755 "$work"
  mnt=$work/mnt
  other=$work/other
  mkdir "$mnt" "$other"
  timeout 60 mount -t tmpfs -o size=64M,mode=0755 daxfs-other "$other"
  other_dir=$other/dir
else
  [ "$kind" = xfs ] && skip "xfs needs root (losetup, mount)"
  work=$(mktemp -d /dev/shm/daxfs-fs.XXXXXX)
  chmod 0755 "$work"
  mnt=""
  other=""
  other_dir=$(mktemp -d /tmp/daxfs-other.XXXXXX)
fi

case "$kind" in
  tmpfs)
    if $root; then
      timeout 60 mount -t tmpfs -o "size=$size,mode=0755,huge=never" daxfs-test "$mnt"
      dir=$mnt/dir
    else
      dir=$work/dir
    fi
    ;;
  xfs)
    command -v mkfs.xfs >/dev/null || skip "mkfs.xfs not found (install xfsprogs)"
    [ -e /dev/loop-control ] || skip "no /dev/loop-control"
    image=/dev/shm/daxfs-with-fs-$$.img
    truncate -s "$size" "$image"
    loop=$(timeout 60 losetup --find --show "$image") || skip "losetup failed"
    timeout 120 mkfs.xfs -q -f -m reflink=1,rmapbt=1 "$loop"
    timeout 60 mount -t xfs "$loop" "$mnt"
    dir=$mnt/dir
    ;;
esac
mkdir -p "$dir" "$other_dir"
chmod 0755 "$dir" "$other_dir"
export DAXFS_FS_DIR=$dir DAXFS_FS_OTHER=$other_dir
say "$kind at $dir (other filesystem: $other_dir)"

args=()
for a in "$@"; do
  a=${a//@DIR@/$dir}
  a=${a//@OTHER@/$other_dir}
  args+=("$a")
done
rc=0
timeout -k 10 "${DAXFS_FS_TIMEOUT:-1200}" "${args[@]}" &
child=$!
wait "$child" || rc=$?
child=""
if ! $root; then rm -rf "$other_dir"; fi
exit "$rc"
