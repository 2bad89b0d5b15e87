#!/usr/bin/env bash
# Runs the POSIX conformance suite against DIR (any mounted filesystem: tmpfs, XFS, a daxfs mount):
#   tests/posix/run.sh DIR [gtest options, e.g. --gtest_filter='Rename*']
# Environment: POSIX_TEST (the binary; default build/release/tests/posix/posix_test),
# DAXFS_POSIX_OTHER_DIR (a directory on another filesystem for the EXDEV checks; default a fresh
# one under /dev/shm or /tmp, whichever is not DIR's filesystem), DAXFS_POSIX_REQUIRE (features
# whose absence fails instead of skipping: comma-separated, or "all"; see tests/posix/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ $# -lt 1 ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
dir=$1
shift
bin=${POSIX_TEST:-$root/build/release/tests/posix/posix_test}
if [ ! -x "$bin" ]; then
  echo "run.sh: no $bin (build it: cmake --build --preset release --target posix_test)" >&2
  exit 2
fi
if [ ! -d "$dir" ]; then
  echo "run.sh: $dir is not a directory" >&2
  exit 2
fi

other=${DAXFS_POSIX_OTHER_DIR:-}
made_other=
cleanup() { if [ -n "$made_other" ]; then rm -rf "$made_other"; fi; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -z "$other" ]; then
  for base in /dev/shm /tmp /var/tmp; do
    if [ -d "$base" ] && [ "$(stat -c %d "$base")" != "$(stat -c %d "$dir")" ]; then
      made_other=$(mktemp -d "$base/posix-other.XXXXXX")
      chmod 755 "$made_other"
      other=$made_other
      break
    fi
  done
fi

status=0
DAXFS_POSIX_DIR=$dir DAXFS_POSIX_OTHER_DIR=$other "$bin" "$@" || status=$?
exit $status
