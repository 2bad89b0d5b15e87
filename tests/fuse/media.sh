#!/usr/bin/env bash
# A media error routed while mounted: `daxfs inject-error MOUNTPOINT --at PATH:OFFSET` goes to the
# daemon (an ioctl on the file), which routes it through its DaxFs: every owner of the bad block
# (clones included) loses that block, reads of it fail with EIO through the mount even when its
# pages were cached, other blocks still read, the event is logged, and after unmount
# `daxfs errors` lists the loss and check passes (damage is not inconsistency).
source "$(dirname "$0")/lib.sh"

new_image 64M
new_mountpoint
mount_bg -o allow_other
head -c $((64 * 1024)) /dev/urandom > "$MNT/data"
cp --reflink=auto "$MNT/data" "$MNT/clone"
cat "$MNT/data" "$MNT/clone" > /dev/null  # both now in the page cache
pages() { fincore --noheadings --output PAGES "$1" | tr -d ' '; }
[ "$(pages "$MNT/data")" = 16 ] || fail "data is not in the page cache: $(pages "$MNT/data") pages"
out=$(daxfs inject-error "$MNT" --at /data:8192) || fail "inject-error through the mount: $out"
echo "$out" | grep -q "file owners that lost data: 2" || fail "inject-error said: $out"
[ "$(pages "$MNT/data")" = 15 ] && [ "$(pages "$MNT/clone")" = 15 ] ||
  fail "the lost block's page was not dropped from the cache of both owners"
for f in data clone; do
  rc=0
  dd if="$MNT/$f" of=/dev/null bs=4096 skip=2 count=1 status=none 2>"$SCRATCH/err" || rc=$?
  [ "$rc" -ne 0 ] && grep -q "Input/output error" "$SCRATCH/err" ||
    fail "reading the lost block of $f: rc $rc, $(cat "$SCRATCH/err")"
  dd if="$MNT/$f" of=/dev/null bs=4096 count=2 status=none || fail "the blocks before it of $f"
  dd if="$MNT/$f" of=/dev/null bs=4096 skip=3 status=none || fail "the blocks after it of $f"
done
grep -q '"simulated"\|simulated' "$IMG.events.jsonl" || fail "no event in $IMG.events.jsonl"
# A non-root user may not inject errors (the mount allows other users in).
chmod 755 "$MNT"
out=$(setpriv --reuid=4321 --regid=4321 --clear-groups "$DAXFS" inject-error "$MNT" --offset 0 \
  2>&1) && fail "a non-root user injected an error"
echo "$out" | grep -q "Operation not permitted" || fail "non-root inject-error said: $out"
# Rewriting the whole lost block gives data a fresh block; the clone stays lost.
head -c 4096 /dev/zero | dd of="$MNT/data" bs=4096 seek=2 conv=notrunc status=none ||
  fail "rewrite of the lost block"
cat "$MNT/data" > /dev/null || fail "data after its lost block was rewritten"
unmount_wait
daxfs errors "$IMG" | grep -q "/clone" || fail "daxfs errors does not list /clone"
daxfs errors "$IMG" | grep -q "/data " && fail "daxfs errors still lists /data"
image_clean
echo "media.sh: all checks passed"
