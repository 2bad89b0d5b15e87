#!/usr/bin/env bash
# The daemon's life: data written through the mount is there after a remount and check passes;
# every way of ending a mount (SIGTERM, SIGINT, fusermount3 -u, daxfs umount, daemon mode)
# unmounts the image cleanly; SIGKILL and an aborted connection lose nothing that was fsync'ed
# and the image mounts again and checks clean.
source "$(dirname "$0")/lib.sh"

new_image 128M
new_mountpoint

say "write through the mount, unmount, read back after a remount"
mount_bg
mkdir "$MNT/dir"
probe pattern write "$MNT/dir/data" 3000000 7 || fail "pattern write"
echo "small" > "$MNT/dir/small"
ln -s dir/small "$MNT/link"
unmount_wait
image_clean
daxfs cat "$IMG" /dir/small | grep -qx small || fail "daxfs cat after unmount"
mount_bg
probe pattern verify "$MNT/dir/data" 3000000 7 || fail "data after remount"
[ "$(cat "$MNT/link")" = small ] || fail "symlink after remount"

say "SIGTERM: clean unmount"
kill -TERM "$DAEMON_PID"
wait_daemon 0
! is_mounted "$MNT" || fail "still mounted after SIGTERM"
image_clean

say "SIGINT: clean unmount"
mount_bg
kill -INT "$DAEMON_PID"
wait_daemon 0
! is_mounted "$MNT" || fail "still mounted after SIGINT"
image_clean

say "fusermount3 -u: clean unmount"
mount_bg
t fusermount3 -u "$MNT"
wait_daemon 0
image_clean

say "daemon mode: daxfs mount returns once mounted; daxfs umount waits for a clean image"
daxfs mount "$IMG" "$MNT" -o commit=1 || fail "daemon mode mount"
is_mounted "$MNT" || fail "not mounted when daxfs mount returned"
probe pattern verify "$MNT/dir/data" 3000000 7 || fail "data in daemon mode"
echo more > "$MNT/more"
daxfs umount "$MNT" || fail "daxfs umount"
! is_mounted "$MNT" || fail "still mounted after daxfs umount"
image_clean  # right away: umount waited for the daemon to let go of the image
daxfs cat "$IMG" /more | grep -qx more || fail "a file written in daemon mode"

say "busy: daxfs umount refuses while a file is open, -l detaches"
daxfs mount "$IMG" "$MNT" || fail "mount"
exec 9<"$MNT/more"
out=$("$DAXFS" umount "$MNT" 2>&1) && fail "umount of a busy mount succeeded"
echo "$out" | grep -q "is busy" || fail "busy umount said: $out"
daxfs umount -l "$MNT" || fail "umount -l"
! is_mounted "$MNT" || fail "still visible after umount -l"
read -r line <&9 && [ "$line" = more ] || fail "an open file keeps working after umount -l"
exec 9<&-
# The daemon now finishes: wait for the image's lock.
for i in $(seq 1 400); do daxfs info "$IMG" >/dev/null 2>&1 && break; sleep 0.025; done
image_clean

say "SIGKILL: fsync'ed files survive; the image mounts again and checks clean"
mount_bg -o commit=3600
probe pattern write "$MNT/synced" 1000000 11 fsync || fail "write + fsync"
probe pattern write "$MNT/unsynced" 500000 12 || fail "write"
kill -KILL "$DAEMON_PID"
wait_daemon 137
expect ENOTCONN stat "$MNT"
out=$("$DAXFS" mount "$IMG" "$MNT" 2>&1) && fail "mount over a dead mount succeeded"
echo "$out" | grep -q "a daemon died there" || fail "mount over a dead mount said: $out"
daxfs umount "$MNT" || fail "daxfs umount of a dead mount"
daxfs check "$IMG" >/dev/null || fail "check after SIGKILL"
mount_bg
probe pattern verify "$MNT/synced" 1000000 11 || fail "fsync'ed file after SIGKILL"
# Not fsync'ed, with a one-hour commit interval and fewer than commit_ops operations: gone,
# exactly as the durability rules say (the whole group after the last commit).
[ ! -e "$MNT/unsynced" ] || fail "a file never committed survived SIGKILL"
unmount_wait

say "-o sync and commit_ops=1: every operation is durable on return (SIGKILL loses nothing)"
for opts in sync commit=3600,commit_ops=1; do
  mount_bg -o "$opts"
  probe pattern write "$MNT/no-fsync.$opts" 300000 14 || fail "write"
  mkdir "$MNT/dir.$opts"
  kill -KILL "$DAEMON_PID"
  wait_daemon 137
  daxfs umount "$MNT" || fail "umount of a dead mount"
  daxfs check "$IMG" >/dev/null || fail "check after SIGKILL with -o $opts"
  mount_bg
  probe pattern verify "$MNT/no-fsync.$opts" 300000 14 || fail "-o $opts: a returned write was lost"
  [ -d "$MNT/dir.$opts" ] || fail "-o $opts: a returned mkdir was lost"
  unmount_wait
done
mount_bg

say "abort the connection (/sys/fs/fuse/connections/N/abort) under load"
# The fusectl filesystem (systemd mounts it; a bare container may not): mounted for the test.
if [ ! -d /sys/fs/fuse/connections ] || ! is_mounted /sys/fs/fuse/connections; then
  t mount -t fusectl fusectl /sys/fs/fuse/connections || fail "cannot mount fusectl"
  FUSECTL_MOUNTED=1
fi
conn=$(awk -v m="$MNT" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo)
probe pattern write "$MNT/before-abort" 200000 13 fsync || fail "write + fsync"
( for i in $(seq 1 200); do echo "$i" > "$MNT/load.$i" 2>/dev/null || break; done ) &
load=$!
echo 1 > "/sys/fs/fuse/connections/$conn/abort"
if [ -n "${FUSECTL_MOUNTED:-}" ]; then umount /sys/fs/fuse/connections && FUSECTL_MOUNTED=""; fi
wait "$load" || true
wait_daemon 0  # the daemon sees the connection end and unmounts the image cleanly
expect ENOTCONN stat "$MNT"
t fusermount3 -u "$MNT" || fail "fusermount3 -u after abort"
image_clean
mount_bg
probe pattern verify "$MNT/before-abort" 200000 13 || fail "fsync'ed file after abort"
probe pattern verify "$MNT/synced" 1000000 11 || fail "older file after abort"
unmount_wait
image_clean
echo "lifecycle.sh: all checks passed"
