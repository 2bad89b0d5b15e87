#!/usr/bin/env bash
# Real programs against a directory on any filesystem (tmpfs, XFS, a daxfs mount), each result
# verified: cp -a + diff -r of a real tree, tar create/extract, git init/add/commit/log/gc/clone/
# fsck, sqlite3 (rollback journal and WAL) with integrity_check, rsync -a --checksum twice, fio with
# --verify=crc32c over several jobs, cp --reflink=auto and copy_file_range of an aligned range.
#
#   tests/programs/run.sh DIR        (on a daxfs mount: tests/programs/on-daxfs.sh)
#
# Works in DIR/programs (made fresh) and leaves its files there for the caller to inspect or
# remove. Environment:
#   COPY_RANGE          the copy_range helper (default: build/release/tests/programs/copy_range)
#   DAXFS_PROGRAMS_TREE the tree to copy (default /usr/include)
#   DAXFS_SHARED_CHECK  a command run as `CMD FILE OFFSET LENGTH` that must succeed when the
#                       range of FILE shares its blocks (for filesystems this script cannot ask;
#                       on XFS and btrfs, filefrag -v is asked directly)
#   DAXFS_PROGRAMS_MANIFEST  where to write the list of ranges that should share blocks, one
#                       "PATH OFFSET LENGTH" per line, PATH relative to DIR (default
#                       DIR/programs/shared-extents.manifest); the daxfs mount test checks them
#                       with `daxfs bmap` after unmounting.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then sed -n '2,21p' "$0" >&2; exit 2; fi
dir=$(cd "$1" && pwd)
work=$dir/programs
tree_src=${DAXFS_PROGRAMS_TREE:-/usr/include}
manifest=${DAXFS_PROGRAMS_MANIFEST:-$work/shared-extents.manifest}
copy_range=${COPY_RANGE:-}
if [ -z "$copy_range" ]; then
  b=$here/../../build/release/tests/programs/copy_range
  if [ -x "$b" ]; then copy_range=$b; fi
fi

step=""
fail() { echo "FAILED: ${step}: $*" >&2; exit 1; }
check() { step=$1; echo "== $1"; }
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "tests/programs/run.sh: FAILED at \"$step\" (exit $rc)" >&2; fi' EXIT
need() { for t in "$@"; do command -v "$t" >/dev/null || fail "$t not found (install it: see PACKAGES in scripts/run)"; done; }
need cp diff tar git sqlite3 rsync fio cmp find sort stat
[ -n "$copy_range" ] && [ -x "$copy_range" ] ||
  fail "the copy_range helper is not built (cmake --build ... --target copy_range, or set COPY_RANGE)"

fstype=$(findmnt -n -o FSTYPE --target "$dir" 2>/dev/null || stat -f -c %T "$dir")
echo "tests/programs/run.sh: $dir ($fstype), tree $tree_src"
rm -rf "$work"
mkdir "$work"
: > "$manifest"

# A listing of a tree for comparing metadata: type, mode, size (not of directories: that is the
# filesystem's own business), mtime to the nanosecond, symlink target.
listing() {
  (cd "$1" && find . -printf '%p %y %m %s %T@ %l\n' | awk '$2 == "d" { $4 = "-" } 1' | LC_ALL=C sort)
}

check "cp -a $tree_src, then diff -r and compare modes, sizes, mtimes and symlinks"
cp -a "$tree_src" "$work/tree"
diff -r --no-dereference "$tree_src" "$work/tree" > "$work/diff.out" || fail "diff -r: $(head -5 "$work/diff.out")"
listing "$tree_src" > "$work/listing.src"
listing "$work/tree" > "$work/listing.copy"
cmp -s "$work/listing.src" "$work/listing.copy" ||
  fail "metadata differs: $(diff "$work/listing.src" "$work/listing.copy" | head -5)"
files=$(wc -l < "$work/listing.src")
echo "   $files entries identical"

check "tar (pax): create from the copy, extract into DIR again, compare contents and metadata"
tar --format=posix -C "$work" -cf "$work/tree.tar" tree  # pax keeps nanosecond mtimes
mkdir "$work/untar"
tar -C "$work/untar" -xf "$work/tree.tar"
diff -r --no-dereference "$work/tree" "$work/untar/tree" > "$work/diff.out" || fail "diff -r: $(head -5 "$work/diff.out")"
listing "$work/untar/tree" > "$work/listing.untar"
cmp -s "$work/listing.copy" "$work/listing.untar" ||
  fail "metadata differs after extract: $(diff "$work/listing.copy" "$work/listing.untar" | head -5)"
[ "$(tar -tf "$work/tree.tar" | wc -l)" -eq "$files" ] || fail "the archive does not list $files entries"
rm -rf "$work/untar"

check "special files: a FIFO and a device node carried by cp -a and by tar"
mkdir "$work/special"
mkfifo -m 0640 "$work/special/fifo"
mknod -m 0600 "$work/special/null" c 1 3
cp -a "$work/special" "$work/special.cp"
tar -C "$work" -cf "$work/special.tar" special
mkdir "$work/special.untar"
tar -C "$work/special.untar" -xf "$work/special.tar"
for d in "$work/special" "$work/special.cp" "$work/special.untar/special"; do
  [ -p "$d/fifo" ] && [ "$(stat -c %a "$d/fifo")" = 640 ] || fail "$d/fifo is not a FIFO of mode 640"
  [ -c "$d/null" ] && [ "$(stat -c %t:%T:%a "$d/null")" = "1:3:600" ] ||
    fail "$d/null is not the character device 1:3 of mode 600: $(stat -c '%F %t:%T %a' "$d/null")"
done
rm -rf "$work/special" "$work/special.cp" "$work/special.untar" "$work/special.tar"

check "git: init, add, commit twice, log, gc, clone (hard links), fsck --full --strict"
repo=$work/git
gitc() { git -C "$repo" -c user.name="daxfs tests" -c user.email=tests@daxfs.invalid -c gc.auto=0 "$@"; }
git -c init.defaultBranch=main init -q "$repo"
gitsrc=$work/tree/linux
[ -d "$gitsrc" ] || gitsrc=$work/tree
cp -a "$gitsrc" "$repo/src"
gitc add -A
gitc commit -q -m "first: a copy of $gitsrc"
mapfile -t some < <(cd "$repo" && find src -type f | LC_ALL=C sort | head -2)
[ ${#some[@]} -eq 2 ] || fail "the tree has fewer than two files for git"
echo "changed" >> "$repo/${some[0]}"
git -C "$repo" rm -q "${some[1]}"
head -c 100000 /dev/urandom > "$repo/binary.bin"
gitc add -A
gitc commit -q -m "second: a change, a removal, a binary file"
[ "$(gitc log --oneline | wc -l)" -eq 2 ] || fail "git log does not show two commits"
[ -z "$(gitc status --porcelain)" ] || fail "the work tree is not clean: $(gitc status --porcelain | head -3)"
gitc fsck --full --strict --no-progress
gitc gc -q --prune=now
gitc fsck --full --strict --no-progress
git clone -q --local "$repo" "$work/clone"
git -C "$work/clone" fsck --full --strict --no-progress
diff -r --exclude=.git "$repo" "$work/clone" > "$work/diff.out" || fail "clone differs: $(head -5 "$work/diff.out")"
[ "$(git -C "$work/clone" rev-parse HEAD)" = "$(gitc rev-parse HEAD)" ] || fail "clone has another HEAD"

check "sqlite3: 20,000 rows in a transaction, an index, a delete, an update, vacuum; then WAL"
db=$work/test.db
sqlite3 "$db" <<'SQL' > /dev/null
PRAGMA journal_mode=DELETE;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, value INTEGER, data BLOB);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
INSERT INTO t SELECT x, 'name' || x, x * 7, randomblob(200) FROM c;
COMMIT;
CREATE INDEX t_value ON t(value);
DELETE FROM t WHERE id % 3 = 0;
UPDATE t SET value = value + 1 WHERE id % 5 = 0;
VACUUM;
SQL
[ "$(sqlite3 "$db" 'PRAGMA integrity_check;')" = ok ] || fail "integrity_check: $(sqlite3 "$db" 'PRAGMA integrity_check;' | head -3)"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM t;')" = 13334 ] || fail "row count $(sqlite3 "$db" 'SELECT count(*) FROM t;'), want 13334"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM t WHERE value % 7 = 1;')" = 2667 ] || fail "the update is not there"
wal=$work/wal.db
sqlite3 "$wal" <<'SQL' > /dev/null
PRAGMA journal_mode=WAL;
CREATE TABLE k(key TEXT PRIMARY KEY, v BLOB);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000)
INSERT INTO k SELECT 'key' || x, randomblob(500) FROM c;
COMMIT;
DELETE FROM k WHERE rowid % 2 = 0;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
[ "$(sqlite3 "$wal" 'PRAGMA integrity_check;')" = ok ] || fail "WAL integrity_check"
[ "$(sqlite3 "$wal" 'SELECT count(*) FROM k;')" = 2500 ] || fail "WAL row count"
echo "   13334 rows (journal), 2500 rows (WAL): integrity ok"

check "rsync -a --checksum, diff -r, and a second rsync that transfers nothing"
rsync -a --checksum "$work/tree/" "$work/rsync/"
diff -r --no-dereference "$work/tree" "$work/rsync" > "$work/diff.out" || fail "diff -r: $(head -5 "$work/diff.out")"
again=$(rsync -a --checksum --itemize-changes "$work/tree/" "$work/rsync/")
[ -z "$again" ] || fail "the second rsync changed: $(echo "$again" | head -5)"

check "fio --verify=crc32c: random 4 KiB, sequential 1 MiB and random 512 B..64 KiB writes, 5 jobs"
mkdir "$work/fio"
cat > "$work/fio/verify.fio" <<EOF
[global]
directory=$work/fio
ioengine=psync
direct=0
verify=crc32c
verify_fatal=1
do_verify=1
verify_state_save=0
[rand4k]
rw=randwrite
bs=4k
size=16m
numjobs=2
verify_backlog=256
[seq1m]
rw=write
bs=1m
size=32m
numjobs=2
[randmixed]
rw=randwrite
bsrange=512-64k
size=16m
fsync=16
EOF
# fio would save verify state (local-*-verify.state) into its cwd: not saved, and cwd is DIR anyway.
(cd "$work/fio" && fio --output="$work/fio/out.txt" "$work/fio/verify.fio") || fail "fio: $(grep -iE 'verify|err' "$work/fio/out.txt" | head -5)"
grep -q 'err= 0' "$work/fio/out.txt" || fail "fio reported errors"
if grep -qE 'err= *[1-9]|verify: bad' "$work/fio/out.txt"; then fail "fio: $(grep -E 'err= *[1-9]|verify: bad' "$work/fio/out.txt" | head -3)"; fi
echo "   $(grep -c 'err= 0' "$work/fio/out.txt") jobs, no errors"

check "cp --reflink=auto and copy_file_range of an aligned and an unaligned range"
r=$work/reflink
mkdir "$r"
head -c $((8 << 20)) /dev/urandom > "$r/src"
sync "$r/src"
cp --reflink=auto "$r/src" "$r/copy"
cmp "$r/src" "$r/copy" || fail "cp --reflink=auto copy differs"
[ "$("$copy_range" "$r/src" $((1 << 20)) "$r/range" $((2 << 20)) $((4 << 20)))" = $((4 << 20)) ] ||
  fail "copy_range of the aligned range copied less than 4 MiB"
cmp -n $((4 << 20)) <(tail -c +$(((1 << 20) + 1)) "$r/src") <(tail -c +$(((2 << 20) + 1)) "$r/range") ||
  fail "the aligned copied range differs"
cmp -n $((2 << 20)) "$r/range" /dev/zero || fail "the range copy's leading hole is not zeros"
[ "$(stat -c %s "$r/range")" -eq $((6 << 20)) ] || fail "the range copy is not 6 MiB"
[ "$("$copy_range" "$r/src" 1000 "$r/unaligned" 333 100000)" = 100000 ] || fail "unaligned copy_range"
cmp -n 100000 <(tail -c +1001 "$r/src") <(tail -c +334 "$r/unaligned") || fail "the unaligned range differs"
# Writing to the source afterwards must not show through the copies (copy-on-write).
printf 'overwritten' | dd of="$r/src" bs=1 seek=$((2 << 20)) conv=notrunc status=none
cmp -s "$r/src" "$r/copy" && fail "a write to the source changed the reflinked copy"
[ "$(tail -c +$(((2 << 20) + 1)) "$r/copy" | head -c 11)" != overwritten ] || fail "the copy shows the source's write"
[ "$(tail -c +$(((3 << 20) + 1)) "$r/range" | head -c 11)" != overwritten ] || fail "the range copy shows the source's write"
# The ranges that must still share blocks with the source: past the overwritten block at 2 MiB
# (the source's offset 2 MiB is the range copy's 3 MiB).
{
  echo "programs/reflink/copy $((4 << 20)) $((4 << 20))"
  echo "programs/reflink/range $((4 << 20)) $((2 << 20))"
} > "$manifest"
echo "   manifest of ranges that should share blocks: $manifest"

# Whether FILE shares blocks in [OFFSET, OFFSET+LENGTH) (filefrag -v flags "shared").
shares() {
  local file=$1 off=$2 len=$3 bs
  bs=$(stat -f -c %S "$file")
  filefrag -v -b"$bs" "$file" |
    sed -n 's/^ *[0-9][0-9]*: *\([0-9][0-9]*\)\.\. *\([0-9][0-9]*\):.*/\1 \2 &/p' |
    awk -v first=$((off / bs)) -v last=$(((off + len) / bs - 1)) \
      '$2 >= first && $1 <= last && /shared/ { found = 1 } END { exit !found }'
}
# The source was overwritten in [2 MiB, 2 MiB + 11): both copies still share the rest.
case "$fstype" in
  xfs|btrfs)
    check "shared extents on $fstype (filefrag -v)"
    while read -r path off len; do
      shares "$dir/$path" "$off" "$len" || fail "$path [$off, +$len) shares no blocks: $(filefrag -v "$dir/$path" | head -8)"
    done < "$manifest"
    echo "   both copies share blocks with the source"
    ;;
  *)
    if [ -n "${DAXFS_SHARED_CHECK:-}" ]; then
      check "shared extents ($DAXFS_SHARED_CHECK)"
      while read -r path off len; do
        $DAXFS_SHARED_CHECK "$dir/$path" "$off" "$len" || fail "$path [$off, +$len) does not share blocks"
      done < "$manifest"
    else
      echo "== shared extents: not checked here ($fstype: no reflink, or set DAXFS_SHARED_CHECK; the manifest lists the ranges)"
    fi
    ;;
esac

rm -f "$work"/diff.out "$work"/listing.*
echo "tests/programs/run.sh: all programs verified on $dir ($fstype)"
