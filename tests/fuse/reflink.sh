#!/usr/bin/env bash
# copy_file_range through the mount clones the block-aligned part (the copy shares the source's
# blocks: `daxfs bmap` after unmount says `shared`) and copies the rest; cp --reflink=auto ends up
# sharing too (FICLONE cannot cross FUSE, cp falls back to copy_file_range). Contents stay equal,
# a write to a copy unshares only that copy, and check passes.
source "$(dirname "$0")/lib.sh"

new_image 128M
new_mountpoint
mount_bg
head -c $((4 * 1024 * 1024 + 1000)) /dev/urandom > "$SCRATCH/src"
cp "$SCRATCH/src" "$MNT/src"
probe copy-range "$MNT/src" "$MNT/by-cfr" || fail "copy_file_range"
t cp --reflink=auto "$MNT/src" "$MNT/by-cp"
rc=0
out=$(t cp --reflink=always "$MNT/src" "$MNT/by-ficlone" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && echo "$out" | grep -q "Operation not supported" ||
  fail "cp --reflink=always (FICLONE) should fail with EOPNOTSUPP on FUSE: $out"
for f in by-cfr by-cp; do cmp "$SCRATCH/src" "$MNT/$f" || fail "$f differs from the source"; done
cp "$MNT/by-cp" "$MNT/changed" --reflink=auto
printf 'X' | dd of="$MNT/changed" bs=1 seek=5000 conv=notrunc status=none
cmp "$SCRATCH/src" "$MNT/src" || fail "a write to a clone changed the source"
unmount_wait
image_clean

# bmap FILE: "FILE-OFFSET-RANGE FLAGS" per extent.
extents() { daxfs bmap "$IMG" "$1" | awk 'NR > 2 { print $2, $5 }'; }
for f in /by-cfr /by-cp; do
  got=$(extents "$f")
  echo "$got" | grep -q '^\[0\.\.4194303\] shared$' ||
    fail "$f: the aligned 4 MiB are not one shared extent: $got"
  echo "$got" | grep -q '^\[4194304\.\.4198399\] -$' ||
    fail "$f: the 1000-byte tail should be a private (copied) block: $got"
done
extents /changed | grep -q '^\[4096\.\.8191\] -$' ||
  fail "/changed: the rewritten block is not private: $(extents /changed)"
echo "reflink.sh: all checks passed"
