#!/usr/bin/env bash
# Mount errors reach the invoking shell with exit code 1 and a clear message, in daemon mode
# (through the start-up handshake) and in the foreground: a missing mount point, one that is not
# a directory or already a daxfs mount, an image in use, missing or not a daxfs image, a bad
# option; a damaged image mounts read-only and says why (with twins: repaired, read-write);
# -o ro refuses writes.
source "$(dirname "$0")/lib.sh"

# mount_fails EXPECTED_TEXT ARGS...: daxfs mount ARGS exits 1 and says EXPECTED_TEXT.
mount_fails() {
  local want=$1 rc=0 out
  shift
  out=$(t "$DAXFS" mount "$@" 2>&1) || rc=$?
  [ "$rc" -eq 1 ] || fail "daxfs mount $*: exit $rc, expected 1 ($out)"
  echo "$out" | grep -qF -- "$want" || fail "daxfs mount $*: said '$out', expected '$want'"
}

new_image 64M --no-metadata-dup
new_mountpoint
touch "$SCRATCH/a-file"
for mode in "" "-f"; do
  say "errors before mounting${mode:+ (foreground)}"
  mount_fails "mount point $SCRATCH/missing does not exist" "$IMG" "$SCRATCH/missing" $mode
  mount_fails "is not a directory" "$IMG" "$SCRATCH/a-file" $mode
  mount_fails "-o bogus: unknown mount option" "$IMG" "$MNT" -o bogus $mode
  mount_fails "-o commit=soon: 'soon' is not a whole number" "$IMG" "$MNT" -o commit=soon $mode
  mount_fails "nothing would check permissions" "$IMG" "$MNT" -o no_default_permissions,allow_other \
    $mode
  mount_fails "No such file or directory" "$SCRATCH/no-image" "$MNT" $mode
  head -c 1M /dev/zero > "$SCRATCH/junk.img"
  mount_fails "not a daxfs image" "$SCRATCH/junk.img" "$MNT" $mode
  ! is_mounted "$MNT" || fail "a failed mount left a mount behind"
done
rc=0
t "$DAXFS" mount "$IMG" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "a missing MOUNTPOINT argument is a usage error (exit 2), got $rc"

say "busy mount point and image in use"
mount_bg
other=$(mktemp -d "$SCRATCH/mnt.XXXXXX")
mount_fails "is busy: daxfs already mounts $IMG there" "$IMG" "$MNT"
mount_fails "device is in use" "$IMG" "$other"
mount_fails "device is in use" "$IMG" "$other" -o ro
unmount_wait

say "read-only: -o ro"
daxfs mount "$IMG" "$MNT" || fail "mount"
echo kept > "$MNT/kept"
daxfs umount "$MNT"
daxfs mount "$IMG" "$MNT" -o ro || fail "mount -o ro"
[ "$(cat "$MNT/kept")" = kept ] || fail "read on a read-only mount"
expect EROFS open "$MNT/new" wronly,creat
expect EROFS mkdir "$MNT/dir"
expect EROFS unlink "$MNT/kept"
daxfs umount "$MNT"

say "damaged metadata: mounted read-only, with the reason"
offset=$(( 2 * 1024 * 1024 ))  # inside chunk 0, a METADATA chunk
daxfs info "$IMG" --json | grep -q '"type": "METADATA"' || fail "no METADATA chunk"
daxfs inject-error "$IMG" --offset "$offset" >/dev/null 2>&1 || fail "inject-error"
out=$(t "$DAXFS" mount "$IMG" "$MNT" 2>&1) || fail "mount of a damaged image: $out"
echo "$out" | grep -q "mounted read-only: media error in metadata at device bytes $offset+4096" ||
  fail "the read-only mount did not say why: $out"
awk -v m="$MNT" '$5 == m { split($6, o, ","); exit o[1] != "ro" }' /proc/self/mountinfo ||
  fail "the kernel mount is not read-only"
[ "$(cat "$MNT/kept")" = kept ] || fail "read on the damaged image"
expect EROFS open "$MNT/new" wronly,creat
daxfs umount "$MNT"
say "damaged metadata with twins (the default): repaired at mount, read-write, logged"
new_image 64M
mount_bg
echo kept > "$MNT/kept"
unmount_wait
daxfs inject-error "$IMG" --offset "$offset" >/dev/null 2>&1 || fail "inject-error"
out=$(t "$DAXFS" mount "$IMG" "$MNT" 2>&1) || fail "mount of an image with a bad node copy: $out"
echo "$out" | grep -q "read-only" && fail "a bad copy with a good twin mounted read-only: $out"
[ "$(cat "$MNT/kept")" = kept ] || fail "read after the repair"
echo new > "$MNT/new" || fail "write after the repair"
daxfs umount "$MNT"
grep -q '"event":"repair"' "$IMG.events.jsonl" || fail "no repair event: $(cat "$IMG.events.jsonl")"
daxfs check "$IMG" >/dev/null || fail "check after the repair: $(daxfs check "$IMG" 2>&1)"
say "ENOSPC mid-write: a clear errno, nothing half-made, the space comes back"
new_image 16M
mount_bg
rc=0
dd if=/dev/urandom of="$MNT/big" bs=1M count=64 status=none 2>"$SCRATCH/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "No space left on device" "$SCRATCH/err" ||
  fail "writing 64 MiB into 16 MiB: rc $rc, $(cat "$SCRATCH/err")"
size=$(stat -c %s "$MNT/big")
[ $((size % (1024 * 1024))) -eq 0 ] || fail "a failed 1 MiB write left part of itself: size $size"
rm "$MNT/big"
dd if=/dev/urandom of="$MNT/again" bs=1M count=4 status=none || fail "space did not come back"
unmount_wait
image_clean
echo "errors.sh: all checks passed"
