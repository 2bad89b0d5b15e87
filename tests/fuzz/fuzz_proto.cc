// libFuzzer target: the client protocol decoder (src/proto). Input: one message as it would
// arrive from a socket. Decoding must never crash or read out of bounds; whatever decodes must
// re-encode to bytes that decode to the same message, and its layouts must survive the checks
// and splicing the client and server apply to them. Knows nothing of sockets or the engine.
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "proto/layout_ops.h"
#include "proto/message.h"

namespace {

using namespace daxfs::proto;

void ExerciseLayout(uint64_t offset, uint64_t length, const std::vector<Segment>& segments) {
  // Any list of segments goes through validation; a valid one through splicing and slicing,
  // which must keep it valid.
  constexpr uint64_t kDevice = 1ull << 40;
  if (!ValidateLayout(offset, length, segments, kDevice).ok()) return;
  std::vector<Segment> layout = segments;
  const uint64_t mid = offset + (length / 2 / kPageSize) * kPageSize;
  std::vector<Segment> change = {{mid, kPageSize, kNoDevice, SegmentKind::kLost}};
  if (mid + kPageSize <= offset + length) {
    SpliceLayout(&layout, mid, kPageSize, change);
    if (!ValidateLayout(offset, length, layout, kDevice).ok()) __builtin_trap();
  }
  std::vector<Segment> slice = SliceLayout(layout, offset, length);
  if (slice != layout) __builtin_trap();
  (void)ChunkSegments(layout);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  daxfs::Result<Message> m = Decode(input);
  if (!m.ok()) return 0;
  const std::vector<uint8_t> again = Encode(m->body, m->header.request_id, m->header.version);
  daxfs::Result<Message> back = Decode(again);
  if (!back.ok() || !(back->body == m->body) || back->header.type != m->header.type) {
    __builtin_trap();
  }
  if (const auto* reply = std::get_if<MapReply>(&m->body)) {
    ExerciseLayout(reply->file_offset, reply->length, reply->segments);
  } else if (const auto* recall = std::get_if<LayoutRecall>(&m->body)) {
    ExerciseLayout(recall->file_offset, recall->length, recall->segments);
  }
  return 0;
}
