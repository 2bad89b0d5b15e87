#!/usr/bin/env bash
# Basic file and directory operations, and their errors, against any directory (DIR, default
# $DAXFS_MNT): a daxfs mount in the tests, a tmpfs directory to check the test itself.
#   tests/fuse/ops.sh [DIR]        FUSE_PROBE: the fuse_probe helper
set -euo pipefail
DIR=${1:-${DAXFS_MNT:?give a directory or set DAXFS_MNT}}
HERE=$(cd "$(dirname "$0")" && pwd)
FUSE_PROBE=${FUSE_PROBE:-$HERE/../../build/release/tests/fuse/fuse_probe}
case "$(stat -f -c %T "$DIR")" in fuse*) ;; *) export FUSE_PROBE_HOST_FS=1 ;; esac
W=$(mktemp -d "$DIR/ops.XXXXXX")
trap 'cd /; rm -rf "$W"' EXIT
cd "$W"

fail() { echo "FAILED (ops.sh in $DIR): $*" >&2; exit 1; }
expect() { "$FUSE_PROBE" expect "$@" || fail "expect $*"; }
eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }

echo "== files: create, write, read, append, O_TRUNC, truncate"
echo hello > f
eq "$(cat f)" hello "read back"
echo world >> f
eq "$(cat f)" "$(printf 'hello\nworld')" "append"
eq "$(stat -c %s f)" 12 "size after append"
: > f
eq "$(stat -c %s f)" 0 "O_TRUNC"
truncate -s 1M f
eq "$(stat -c %s f)" 1048576 "truncate up"
eq "$(stat -c %b f)" 0 "a truncated-up file is a hole"
truncate -s 100 f
eq "$(stat -c %s f)" 100 "truncate down"
eq "$(od -An -tx1 -N4 f | tr -d ' ')" 00000000 "zeros after truncate"
head -c 5M /dev/urandom > src
cp src big
cmp src big || fail "a 5 MiB copy differs"
dd if=src of=big bs=4096 seek=100 count=3 conv=notrunc status=none
cmp src big >/dev/null && fail "an overwrite changed nothing"
cmp <(dd if=src bs=4096 count=3 status=none) <(dd if=big bs=4096 skip=100 count=3 status=none) ||
  fail "overwritten blocks read back wrong"

echo "== directories: mkdir -p, listing, many entries, rmdir"
mkdir -p a/b/c
eq "$(stat -c %h a)" 3 "nlink of a directory with one subdirectory"
touch a/b/c/x a/y
eq "$(cd a && find . | sort | tr '\n' ' ')" ". ./b ./b/c ./b/c/x ./y " "find"
mkdir many
for i in $(seq 1 600); do : > "many/file-$i"; done
eq "$(ls many | wc -l)" 600 "ls of 600 entries (several readdir calls)"
eq "$(ls -l many | grep -c '^-rw')" 600 "ls -l of 600 entries (readdirplus)"
rm many/file-1*
eq "$(ls many | wc -l)" 489 "after removing 111"
rm -r many
[ ! -e many ] || fail "rm -r left the directory"

echo "== links, symlinks, rename"
echo data > t
ln t t2
eq "$(stat -c %h t)" 2 "nlink after link"
eq "$(stat -c %i t)" "$(stat -c %i t2)" "a hard link is the same inode"
ln -s t sl
eq "$(readlink sl)" t "readlink"
eq "$(cat sl)" data "read through a symlink"
ln -s "$(printf 'x%.0s' $(seq 1 300))" long-target
eq "$(readlink long-target | wc -c)" 301 "a 300-byte symlink target"
mv t2 t3
[ -e t2 ] && fail "rename left the old name"
eq "$(cat t3)" data "renamed file"
echo other > o
mv o t3
eq "$(cat t3)" other "rename over a file replaces it"
eq "$(stat -c %h t)" 1 "the replaced link is gone"
mkdir d1 d2
touch d2/in
mv d1 a/
[ -d a/d1 ] || fail "rename a directory into another"
rm t3

echo "== attributes: chmod, chown, utimes"
chmod 640 t
eq "$(stat -c %a t)" 640 "chmod"
if [ "$(id -u)" -eq 0 ]; then
  chown 1234:5678 t
  eq "$(stat -c %u:%g t)" 1234:5678 "chown"
fi
TZ=UTC touch -m -d '2001-02-03 04:05:06.123456789' t
eq "$(TZ=UTC stat -c %y t)" "2001-02-03 04:05:06.123456789 +0000" "mtime with nanoseconds"
eq "$(stat -c %Y t)" 981173106 "mtime seconds"
TZ=UTC touch -a -d '2002-01-01 00:00:00' t
eq "$(stat -c %X t)" 1009843200 "atime"
eq "$(stat -c %Y t)" 981173106 "atime change keeps mtime"
before=$(stat -c %Y t)
touch t
[ "$(stat -c %Y t)" -gt "$before" ] || fail "touch (UTIME_NOW) moves mtime"

echo "== errors"
expect ENOENT open missing rdonly
expect ENOENT stat missing/x
expect ENOTDIR open t/x rdonly
expect EEXIST mkdir a
expect EEXIST open t wronly,creat,excl
expect EISDIR open a wronly
expect ENOTDIR open t rdonly,directory
expect ENOTEMPTY rmdir a
expect ENOTDIR rmdir t
expect EISDIR unlink a
expect ENOENT unlink missing
expect EINVAL rename a a/b/c/inside
expect EISDIR rename t a
expect ENOTDIR rename a t
mkdir full empty
touch full/x
expect ENOTEMPTY rename empty full
expect OK rename full empty
expect EPERM link a a-link
expect EINVAL readlink t
expect ELOOP open sl rdonly,nofollow
ln -s loop1 loop2
ln -s loop2 loop1
expect ELOOP open loop1 rdonly
expect ENAMETOOLONG open "$(printf 'n%.0s' $(seq 1 256))" wronly,creat
expect OK open "$(printf 'n%.0s' $(seq 1 255))" wronly,creat
expect EEXIST symlink t sl

echo "== sparse files, fallocate, mmap"
"$FUSE_PROBE" seek "$W/sparse" || fail "SEEK_DATA / SEEK_HOLE"
"$FUSE_PROBE" fallocate "$W/falloc" || fail "fallocate modes"
"$FUSE_PROBE" mmap "$W/mapped" || fail "mmap coherence"

echo "== statfs"
eq "$(stat -f -c %S .)" 4096 "statfs block size"
[ "$(stat -f -c %a .)" -gt 0 ] || fail "statfs: no free blocks"
df . >/dev/null || fail "df"

cd "$DIR"
rm -rf "$W"
[ ! -e "$W" ] || fail "rm -rf of the work directory"
echo "ops.sh: all checks passed in $DIR"
