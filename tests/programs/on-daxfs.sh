#!/usr/bin/env bash
# tests/programs/run.sh against a fresh daxfs mount, then the shared-extent check it cannot make
# through FUSE: after a clean unmount, `daxfs bmap` must show every range of the manifest shared.
# Mount, unmount on every path and the image's clean state come from tests/fuse/lib.sh (as in the
# other mount tests); exits 77 (ctest: skipped) without root or /dev/fuse.
#
#   tests/programs/on-daxfs.sh [SIZE]      (image size, default 1G)
# Environment: DAXFS, COPY_RANGE (as tests/fuse/lib.sh and tests/programs/run.sh take them).
source "$(dirname "$0")/../fuse/lib.sh"

programs=$HERE/../programs/run.sh
new_image "${1:-1G}"
new_mountpoint
mount_bg -o allow_other
manifest=$SCRATCH/shared-extents.manifest
say "tests/programs/run.sh on the daxfs mount $MNT"
DAXFS_PROGRAMS_MANIFEST=$manifest timeout 900 "$programs" "$MNT" || fail "tests/programs/run.sh"
unmount_wait
image_clean

# shared_in IMAGE-PATH OFFSET LENGTH: every extent overlapping the range is flagged "shared".
# `daxfs bmap` prints two header lines, then per extent "N: [FIRST..LAST] ... FLAGS".
shared_in() {
  local path=$1 off=$2 len=$3
  daxfs bmap "$IMG" "$path" | awk -v lo="$off" -v hi=$((off + len - 1)) '
    NR > 2 {
      r = $2; gsub(/[][]/, "", r); split(r, b, /\.\./)
      if (b[2] + 0 < lo || b[1] + 0 > hi) next
      covered += 1
      if ($5 !~ /shared/) bad = 1
    }
    END { exit !(covered > 0 && !bad) }'
}
[ -s "$manifest" ] || fail "tests/programs/run.sh wrote no manifest ($manifest)"
while read -r path off len; do
  shared_in "/$path" "$off" "$len" ||
    fail "/$path [$off, +$len) is not shared in the image: $(daxfs bmap "$IMG" "/$path")"
  echo "   /$path [$off, +$len): shared (daxfs bmap)"
done < "$manifest"
echo "on-daxfs.sh: programs verified on the daxfs mount, shared extents confirmed after unmount"
