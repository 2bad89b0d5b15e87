#!/usr/bin/env bash
# Runs the POSIX conformance suite (run.sh) on a filesystem made for the run and removed after it:
#   tests/posix/run-on.sh tmpfs|xfs [POSIX_TEST_BINARY] [gtest options]
# tmpfs: a private tmpfs mount (as root; otherwise a fresh directory under /dev/shm).
# xfs: mkfs.xfs -m reflink=1,rmapbt=1 on a loop device over a sparse file in /dev/shm (root only).
# Exit 77 (ctest: skipped) when the filesystem cannot be made here, with the reason.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kind=${1:-}
shift || true
if [ $# -ge 1 ] && [ "${1#-}" = "$1" ]; then
  export POSIX_TEST=$1
  shift
fi
skip() { echo "run-on.sh: skipped: $*"; exit 77; }

mnt= loop= img= tmpdir=
cleanup() {
  set +e
  if [ -n "$mnt" ] && mountpoint -q "$mnt"; then
    timeout 30 umount "$mnt" || timeout 30 umount -l "$mnt"
  fi
  [ -n "$loop" ] && timeout 30 losetup -d "$loop"
  [ -n "$img" ] && rm -f "$img"
  [ -n "$mnt" ] && rmdir "$mnt"
  [ -n "$tmpdir" ] && rm -rf "$tmpdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case "$kind" in
  tmpfs)
    if [ "$(id -u)" -eq 0 ]; then
      mnt=$(mktemp -d /tmp/posix-tmpfs.XXXXXX)
      mount -t tmpfs -o size=1g,mode=0755 posix-tmpfs "$mnt"
      dir=$mnt
    else
      tmpdir=$(mktemp -d /dev/shm/posix-tmpfs.XXXXXX)
      chmod 755 "$tmpdir"
      dir=$tmpdir
    fi
    ;;
  xfs)
    [ "$(id -u)" -eq 0 ] || skip "XFS on a loop device needs root"
    command -v mkfs.xfs >/dev/null || skip "mkfs.xfs not found (install xfsprogs)"
    [ -e /dev/loop-control ] || skip "no /dev/loop-control"
    img=$(mktemp /dev/shm/posix-xfs.XXXXXX.img)
    truncate -s 1G "$img"
    loop=$(losetup --find --show "$img") || skip "losetup failed"
    mkfs.xfs -q -f -m reflink=1,rmapbt=1 "$loop"
    mnt=$(mktemp -d /tmp/posix-xfs.XXXXXX)
    mount -t xfs "$loop" "$mnt"
    chmod 755 "$mnt"
    dir=$mnt
    ;;
  *)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

echo "run-on.sh: $kind at $dir"
status=0
"$here/run.sh" "$dir" "$@" || status=$?
exit $status
