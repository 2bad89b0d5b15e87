// Requests to a running daxfs daemon, carried as ioctls on a file or directory of its mount
// (FUSE hands an ioctl with a fixed-size argument to the daemon). Shared by the daemon and the
// `daxfs` command; a plain layout with no engine types.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>

namespace daxfs::fusefs {

// inject-error on a mounted image: mark device bytes bad (emulated poison) and route the failure
// through the daemon's DaxFs, as `daxfs inject-error` does on an unmounted image.
struct InjectErrorIoctl {
  uint64_t offset = 0;     // in: device offset, or file offset with kInjectAtFileOffset;
                           // out: the device offset routed
  uint64_t length = 0;     // in: bytes (whole 4 KiB blocks are marked); out: device bytes routed
  uint32_t flags = 0;      // in: kInject*
  uint32_t owners = 0;     // out: file owners that lost data
  uint32_t shut_down = 0;  // out: 1 when metadata was hit (the filesystem is now read-only)
  uint32_t reserved = 0;
};
static_assert(sizeof(InjectErrorIoctl) == 32);

// `offset` is a byte of the file the ioctl is issued on: the block behind it is made bad.
inline constexpr uint32_t kInjectAtFileOffset = 1;

// Only mark the blocks bad on the device (a latent error, as the hardware would leave one):
// nothing is routed; a read then fails with EIO and a scrub finds it. `owners` is 0.
inline constexpr uint32_t kInjectLatent = 2;

inline constexpr unsigned long kIocInjectError = _IOWR('x', 0xd1, InjectErrorIoctl);

// ---- Scrub through the daemon (docs/scrub.md "Through a mount"). Issued on the mount's root.
// Start: runs DaxFs::Scrub on a daemon thread (the filesystem stays usable: the scrub works in
// slices). EBUSY while one runs; EPERM unless the caller is root or the mounting user.
struct ScrubStartIoctl {
  uint64_t max_rate = 0;  // bytes per second (0: as fast as possible)
  uint32_t flags = 0;     // kScrub*
  uint32_t reserved = 0;
};
static_assert(sizeof(ScrubStartIoctl) == 16);

// Go on from where the last stopped scrub of this daemon stopped (ENOENT when none did).
inline constexpr uint32_t kScrubResume = 1;

enum ScrubState : uint32_t {
  kScrubIdle = 0,     // none started since the mount
  kScrubRunning = 1,
  kScrubDone = 2,     // finished: the summary is ready
  kScrubStopped = 3,  // stopped by kIocScrubStop (or the unmount): the summary is ready
  kScrubFailed = 4,   // the engine call failed: `error` is its errno
};

// Status: anyone may ask. Per phase (metadata, index, data): whether it ended, bytes read and
// seconds; the current phase's progress; the counts so far.
struct ScrubStatusIoctl {
  uint32_t state = kScrubIdle;  // ScrubState
  uint32_t phase = 0;           // daxfs::ScrubPhase of the current (last) progress
  uint64_t done_bytes = 0;      // of the current phase
  uint64_t total_bytes = 0;
  uint64_t read_bytes = 0;
  uint64_t seconds_ns = 0;      // in the current phase
  uint32_t phases_done = 0;     // bit p: phase p ended
  uint32_t error = 0;           // kScrubFailed: errno
  uint64_t phase_read_bytes[3] = {};
  uint64_t phase_seconds_ns[3] = {};
  uint64_t found = 0;           // at the end: bad copies + problems + bad blocks
  uint64_t repaired = 0;
  uint64_t lost = 0;            // lost file ranges
  uint64_t summary_bytes = 0;   // length of the JSON summary (done/stopped)
};
static_assert(sizeof(ScrubStatusIoctl) == 128);

// Summary: the JSON summary of the last finished or stopped scrub (the `daxfs scrub --json`
// report without "image"), read in chunks: `offset` in; `length` bytes of it out in `data` and
// `total` its whole length. ENOENT when no summary is ready. Root or the mounting user only.
struct ScrubSummaryIoctl {
  uint64_t offset = 0;
  uint32_t length = 0;
  uint32_t total = 0;
  char data[4080] = {};
};
static_assert(sizeof(ScrubSummaryIoctl) == 4096);

inline constexpr unsigned long kIocScrubStart = _IOW('x', 0xd2, ScrubStartIoctl);
inline constexpr unsigned long kIocScrubStatus = _IOR('x', 0xd3, ScrubStatusIoctl);
// Stop: the scrub stops cleanly at its next slice (no argument). ENOENT when none runs.
inline constexpr unsigned long kIocScrubStop = _IO('x', 0xd4);
inline constexpr unsigned long kIocScrubSummary = _IOWR('x', 0xd5, ScrubSummaryIoctl);

}  // namespace daxfs::fusefs
