#!/usr/bin/env bash
# Scrub through a mount's daemon (`daxfs scrub --mount MOUNTPOINT`, fuse/control.h kIocScrub*):
# latent media errors (marked bad, not routed) in data blocks of known files are found by the
# daemon's scrub while the filesystem stays mounted; the JSON names exactly the owners (a clone
# included), reads of the lost blocks then fail with EIO through the mount, everything else reads
# back unchanged; a writer running during the scrub loses nothing; a second start is refused
# while one runs; SIGTERM stops it and --resume goes on; a non-root user may not start one. After
# the unmount the image checks clean and `daxfs errors` lists the losses.
source "$(dirname "$0")/lib.sh"

new_image 128M
new_mountpoint
mount_bg -o allow_other
chmod 755 "$MNT"

say "files, a clone, some churn (an aged image)"
for i in $(seq 1 24); do head -c $((i * 7000)) /dev/urandom > "$MNT/churn$i"; done
head -c $((256 * 1024)) /dev/urandom > "$MNT/a"
probe copy-range "$MNT/a" "$MNT/clone" || fail "copy_file_range (a clone)"
head -c $((256 * 1024)) /dev/urandom > "$MNT/b"
head -c $((1024 * 1024)) /dev/urandom > "$MNT/d"
head -c $((6 * 1024 * 1024)) /dev/urandom > "$MNT/big"
for i in $(seq 1 24 | awk 'NR % 2 == 0'); do rm "$MNT/churn$i"; done
sync -f "$MNT/a"
sum() { sha256sum "$MNT/$1" | cut -d' ' -f1; }
declare -A want
for f in a b d big churn1 churn3; do want[$f]=$(sum "$f"); done

say "latent errors: marked bad, not routed"
out=$(daxfs inject-error "$MNT" --at /a:8192 --latent) || fail "inject-error --latent: $out"
echo "$out" | grep -q "latent" || fail "inject-error --latent said: $out"
out=$(daxfs inject-error "$MNT" --at /d:65536 --length 8192 --latent) ||
  fail "inject-error --latent on /d: $out"
# Nothing was routed: no owner is recorded lost yet.
[ "$(cat "$MNT/a" | sha256sum | cut -d' ' -f1)" = "${want[a]}" ] ||
  fail "a latent error changed what a cached read returns"

say "a non-root user may not start a scrub"
out=$(setpriv --reuid=4321 --regid=4321 --clear-groups "$DAXFS" scrub --mount "$MNT" 2>&1) &&
  fail "a non-root user started a scrub"
echo "$out" | grep -q "Operation not permitted" || fail "non-root scrub said: $out"

say "a stopped scrub, a second start refused while it runs, then --resume"
env --default-signal=INT,TERM "$DAXFS" scrub --mount "$MNT" --max-rate 1M \
  > "$SCRATCH/stopped.out" 2>&1 &
slow=$!
sleep 1
out=$("$DAXFS" scrub --mount "$MNT" 2>&1) && fail "a second scrub started while one ran"
echo "$out" | grep -q "busy" || fail "the second start said: $out"
kill -TERM "$slow"
rc=0
timeout 30 tail --pid="$slow" -f /dev/null || fail "the stopped scrub did not exit"
wait "$slow" || rc=$?
[ "$rc" -eq 0 ] || fail "the stopped scrub exited with $rc: $(cat "$SCRATCH/stopped.out")"
grep -q "scrub stopped" "$SCRATCH/stopped.out" ||
  fail "no 'stopped' in: $(cat "$SCRATCH/stopped.out")"

say "the scrub (resumed) while a writer runs"
(
  n=0
  while [ ! -e "$SCRATCH/stop-writer" ]; do
    head -c $((64 * 1024 + n * 512)) /dev/urandom > "$SCRATCH/w.tmp"
    cp "$SCRATCH/w.tmp" "$MNT/w$n"
    sha256sum < "$SCRATCH/w.tmp" | cut -d' ' -f1 > "$SCRATCH/w$n.sum"
    n=$((n + 1))
  done
  echo "$n" > "$SCRATCH/writer.count"
) &
writer=$!
daxfs scrub --mount "$MNT" --resume --json --max-rate 4M > "$SCRATCH/scrub.json" ||
  fail "scrub --mount --resume: $(cat "$SCRATCH/scrub.json")"
touch "$SCRATCH/stop-writer"
wait "$writer" || fail "the writer failed during the scrub"
n=$(cat "$SCRATCH/writer.count")
[ "$n" -gt 0 ] || fail "the writer wrote nothing during the scrub"
echo "the writer wrote $n files during the scrub"
cat "$SCRATCH/stopped.out"

say "the summary names exactly the owners of the bad blocks"
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$SCRATCH/scrub.json"; }
[ "$(json x 'd["stopped"]')" = False ] || fail "the resumed scrub stopped: $(cat "$SCRATCH/scrub.json")"
[ "$(json x 'd["clean"]')" = True ] || fail "the scrub is not clean: $(cat "$SCRATCH/scrub.json")"
[ "$(json x 'd["mount"]')" = "$MNT" ] || fail "no mount in the JSON"
paths=$(json x '" ".join(sorted(d["lost_paths"]))')
[ "$paths" = "/a /clone /d" ] || fail "lost paths are '$paths', expected '/a /clone /d'"
ranges=$(json x '" ".join(sorted("%s:%d+%d" % (l["path"], l["file_offset"], l["length"]) for l in d["lost"]))')
[ "$ranges" = "/a:8192+4096 /clone:8192+4096 /d:65536+8192" ] ||
  fail "lost ranges are '$ranges'"
[ "$(json x 'd["data"]["found"]')" -ge 2 ] || fail "the data phase found $(json x 'd["data"]["found"]') bad ranges"

say "the lost blocks fail with EIO through the mount; everything else reads back"
lost_read() {  # lost_read FILE BLOCK
  local rc=0
  dd if="$MNT/$1" of=/dev/null bs=4096 skip="$2" count=1 status=none 2>"$SCRATCH/err" || rc=$?
  [ "$rc" -ne 0 ] && grep -q "Input/output error" "$SCRATCH/err" ||
    fail "reading lost block $2 of $1: rc $rc, $(cat "$SCRATCH/err")"
}
lost_read a 2
lost_read clone 2
lost_read d 16
lost_read d 17
dd if="$MNT/a" of=/dev/null bs=4096 count=2 status=none || fail "the blocks before /a's lost one"
dd if="$MNT/a" of=/dev/null bs=4096 skip=3 status=none || fail "the blocks after /a's lost one"
dd if="$MNT/d" of=/dev/null bs=4096 skip=18 status=none || fail "the blocks after /d's lost ones"
for f in b big churn1 churn3; do [ "$(sum "$f")" = "${want[$f]}" ] || fail "$f changed"; done
for i in $(seq 0 $((n - 1))); do
  [ "$(sum "w$i")" = "$(cat "$SCRATCH/w$i.sum")" ] || fail "w$i written during the scrub changed"
done

say "a second scrub finds nothing new"
daxfs scrub --mount "$MNT" --json > "$SCRATCH/again.json" || fail "the second scrub"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["lost"]))' "$SCRATCH/again.json")" = 0 ] ||
  fail "the second scrub found losses again: $(cat "$SCRATCH/again.json")"

unmount_wait
image_clean
errs=$(daxfs errors "$IMG")
for f in /a /clone /d; do echo "$errs" | grep -q "$f " || fail "daxfs errors does not list $f: $errs"; done
echo "$errs" | grep -q "/b " && fail "daxfs errors lists /b: $errs"
echo "scrub.sh: all checks passed"
