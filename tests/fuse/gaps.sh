#!/usr/bin/env bash
# What the mount answers today where the engine still lacks something (fuse/ENGINE_NEEDS.md):
# each gap gives the clear errno Linux gives for a filesystem without the feature. When the
# engine gains one, its line here changes to the real behaviour (and tests/posix covers it).
#   tests/fuse/gaps.sh [DIR]     (a daxfs mount with -o allow_other; default $DAXFS_MNT)
set -euo pipefail
DIR=${1:-${DAXFS_MNT:?give a daxfs mount or set DAXFS_MNT}}
HERE=$(cd "$(dirname "$0")" && pwd)
FUSE_PROBE=${FUSE_PROBE:-$HERE/../../build/release/tests/fuse/fuse_probe}
fail() { echo "FAILED (gaps.sh): $*" >&2; exit 1; }
expect() { "$FUSE_PROBE" expect "$@" || fail "expect $*"; }
cd "$DIR"
touch f g
mkdir d
expect OK mkfifo fifo              # special files (ENGINE_NEEDS 5): FIFOs, sockets, devices
expect OK mknod-char chr
[ -p fifo ] && [ -c chr ] || fail "mkfifo/mknod made no FIFO or character device"
[ "$(stat -c %t:%T chr)" = "1:3" ] || fail "device number of chr: $(stat -c %t:%T chr), not 1:3"
expect OK rename-exchange f g       # rename flags: RENAME_EXCHANGE (the engine's, ENGINE_NEEDS 6)
expect EEXIST rename-noreplace f g  # RENAME_NOREPLACE works (the kernel checks the target)
expect OK rename-noreplace f f2
[ ! -e f ] && [ -e f2 ] || fail "RENAME_NOREPLACE to a new name"
expect ENODATA getxattr g           # extended attributes (ENGINE_NEEDS 7): user., trusted.,
expect OK setxattr g                # security. stored by the engine
expect OK getxattr g
expect OK listxattr g
expect OK removexattr g
expect ENODATA removexattr g
expect EOPNOTSUPP setxattr-acl g    # no POSIX ACLs
# An unlinked open file stays (an orphan, ENGINE_NEEDS 1 closed): reads through it keep working.
out=$("$FUSE_PROBE" unlink-open "$DIR/open-then-unlinked")
[ "$out" = "read after unlink: OK (data kept)" ] || fail "unlink while open: $out"
# New files belong to the caller (the engine's Credentials, in the create itself). Other users
# reach the mount only with -o allow_other.
chmod 1777 d
setpriv --reuid=4321 --regid=4321 --clear-groups touch "$DIR/d/mine"
[ "$(stat -c %u:%g d/mine)" = "4321:4321" ] || fail "owner of a file made by uid 4321"
# default_permissions: the kernel checks mode bits for other users.
echo secret > private
chmod 600 private
if setpriv --reuid=4321 --regid=4321 --clear-groups cat private >/dev/null 2>&1; then
  fail "uid 4321 read a 0600 file of root"
fi
rm -rf f2 g d private fifo chr
echo "gaps.sh: every gap answers as documented"
