#!/usr/bin/env bash
# The POSIX suite on a daxfs mount, as the command of tests/fuse/with-mount.sh (which makes the
# image, mounts it, exports DAXFS_MNT, and unmounts and checks it on every path):
#
#   tests/fuse/with-mount.sh 1G -o allow_other -- tests/posix/on-daxfs.sh
#
# Every feature is required (DAXFS_POSIX_REQUIRE=all: a missing one fails, never skips); the tests
# of tests/posix/daxfs-known-gaps.txt are expected to fail for now, each for the gap it names.
# The EXDEV checks use a directory in /dev/shm (tmpfs), removed on exit. The mount needs
# -o allow_other for the checks as uid 65534.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${DAXFS_MNT:-}" ] && [ -d "$DAXFS_MNT" ] || { echo "on-daxfs.sh: DAXFS_MNT is not set (run it through tests/fuse/with-mount.sh)" >&2; exit 2; }
other=$(mktemp -d /dev/shm/daxfs-posix-other.XXXXXX)
trap 'rm -rf "$other"' EXIT
chmod 0755 "$other"
export DAXFS_POSIX_REQUIRE=${DAXFS_POSIX_REQUIRE:-all}
"$here/run.sh" --known-gaps "$here/daxfs-known-gaps.txt" "$DAXFS_MNT" "$other" "$@"
