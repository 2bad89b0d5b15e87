#!/usr/bin/env bash
# The kernel's lookup counts balance: after lookups, creates, readdirplus listings (ls -l), links
# and renames, dropping the kernel's dentry and inode caches makes it forget every inode, and the
# daemon (with -d, which reports its table at unmount) then knows only the root and never saw a
# forget of more than it had counted.
source "$(dirname "$0")/lib.sh"

new_image 64M
new_mountpoint
mount_bg -d
mkdir -p "$MNT/tree/sub"
for i in $(seq 1 150); do echo "$i" > "$MNT/tree/f$i"; done
for i in $(seq 1 50); do ln "$MNT/tree/f$i" "$MNT/tree/sub/l$i"; done
for i in $(seq 51 80); do mv "$MNT/tree/f$i" "$MNT/tree/sub/m$i"; done
ls -lR "$MNT" > /dev/null
rm "$MNT"/tree/f9*
cat "$MNT"/tree/sub/* > /dev/null
sync
echo 2 > /proc/sys/vm/drop_caches  # dentries and inodes (not the page cache)
stat "$MNT" > /dev/null             # one more request (no lookup): queued forgets go first
unmount_wait
grep -q "inodes the kernel still knew: 1, forgets of unknown lookups: 0" "$DAEMON_LOG" ||
  fail "lookup counts: $(grep 'still knew' "$DAEMON_LOG" || echo 'no report')"
image_clean
echo "lookups.sh: all checks passed"
