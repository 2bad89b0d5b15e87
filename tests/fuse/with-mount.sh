#!/usr/bin/env bash
# Runs a command against a fresh daxfs mount:
#   tests/fuse/with-mount.sh SIZE [-o OPTIONS] -- COMMAND [ARGS...]
# makes an image of SIZE in /dev/shm, mounts it (daxfs mount -f, in the background), runs COMMAND
# with the mount point in $DAXFS_MNT (and the image in $DAXFS_IMAGE), unmounts (daxfs umount,
# which waits for the daemon), and runs daxfs check. Exit status: COMMAND's, or 1 if the unmount
# or the check failed. Used by the mount tests and for suites that run against any directory
# (e.g. tests/posix/run.sh "$DAXFS_MNT").
source "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || { echo "usage: $0 SIZE [-o OPTIONS] -- COMMAND [ARGS...]" >&2; exit 2; }
size=$1
shift
opts=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  opts+=("$1")
  shift
done
[ "${1:-}" = "--" ] || { echo "$0: missing -- before the command" >&2; exit 2; }
shift

new_image "$size"
new_mountpoint
mount_bg "${opts[@]}"
export DAXFS_MNT=$MNT DAXFS_IMAGE=$IMG
status=0
"$@" || status=$?
unmount_wait
image_clean
exit $status
