// The daxfs client protocol's messages (docs/protocol.md): a fixed little-endian header, then a
// body of one of the types below, encoded and decoded with the bounds-checked helpers of
// base/coding.h. Pure bytes: knows nothing of sockets, the engine, mappings or credentials.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "daxfs/status.h"

namespace daxfs::proto {

// ---- Header (24 bytes, every message) ----------------------------------------------------------
inline constexpr uint32_t kMagic = 0x50465844;  // "DXFP" in memory order
inline constexpr uint16_t kMinVersion = 1;      // oldest version this build speaks
inline constexpr uint16_t kMaxVersion = 1;      // newest version this build speaks
inline constexpr size_t kHeaderSize = 24;
// Largest body accepted (and sent): 64 KiB. Layouts longer than a message are continued in
// LayoutMore messages, so nothing legitimate is ever larger.
inline constexpr size_t kMaxBody = 64 * 1024;
inline constexpr size_t kMaxMessage = kHeaderSize + kMaxBody;
inline constexpr size_t kMaxString = 4096;  // paths, messages, action lines
inline constexpr size_t kSegmentSize = 25;  // encoded size of one Segment
// Segments one MapReply / LayoutRecall / LayoutMore carries at most (the rest follow).
inline constexpr size_t kMaxSegmentsPerMessage = 2048;
inline constexpr uint32_t kMaxSegmentsPerLayout = 1u << 24;

// Type codes: never renumbered; new types take new numbers.
enum class MessageType : uint16_t {
  kHello = 1,           // C->S
  kHelloReply = 2,      // S->C, carries the device fd (SCM_RIGHTS)
  kError = 3,           // S->C, reply to any request
  kOk = 4,              // S->C, reply without data (Close, Unmap)
  kOpen = 5,            // C->S
  kOpenReply = 6,       // S->C
  kClose = 7,           // C->S
  kMap = 8,             // C->S
  kMapReply = 9,        // S->C
  kLayoutMore = 10,     // S->C, continuation of a MapReply or LayoutRecall's segments
  kMapAck = 11,         // C->S, no reply
  kUnmap = 12,          // C->S
  kLayoutRecall = 13,   // S->C, server-initiated
  kRecallAck = 14,      // C->S, no reply
  kFailureNotice = 15,  // S->C, server-initiated
  kReportFault = 16,    // C->S, no reply (may be sent from a signal handler)
  kInjectError = 17,    // C->S (control)
  kInjectReply = 18,    // S->C
  kErrors = 19,         // C->S (control)
  kErrorsReply = 20,    // S->C
  kStatus = 21,         // C->S (control)
  kStatusReply = 22,    // S->C
  // 23: reserved for Scrub.
};
const char* MessageTypeName(MessageType type);  // "Hello", ... or "unknown"
bool IsKnownType(uint16_t type);

struct Header {
  uint16_t version = kMaxVersion;
  MessageType type = MessageType::kHello;
  uint16_t flags = 0;  // none defined in version 1: must be 0
  uint32_t body_length = 0;
  uint64_t request_id = 0;  // requests: chosen by the client (non-zero); replies: the same;
                            // server-initiated and no-reply messages: 0
  bool operator==(const Header&) const = default;
};

// ---- Shared pieces -----------------------------------------------------------------------------
enum class SegmentKind : uint8_t { kData = 1, kZero = 2, kLost = 3, kBeyondEof = 4 };
inline constexpr uint64_t kNoDevice = ~0ULL;

struct Segment {
  uint64_t file_offset = 0;
  uint64_t length = 0;
  uint64_t device_offset = kNoDevice;  // kData: the device bytes; kLost: when known
  SegmentKind kind = SegmentKind::kData;
  bool operator==(const Segment&) const = default;
};

struct Range {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const Range&) const = default;
};

struct FileLoss {  // a lost file range (daxfs errors / inject-error owners)
  uint64_t ino = 0;
  uint64_t file_offset = 0;
  uint64_t length = 0;
  uint64_t device_offset = 0;
  bool shared = false;
  std::string path;
  bool operator==(const FileLoss&) const = default;
};

struct Piece {  // a device range and what it holds (RangeKind codes of daxfs/media.h)
  uint64_t offset = 0;
  uint64_t length = 0;
  uint8_t kind = 0;
  bool operator==(const Piece&) const = default;
};

// ---- Bodies ------------------------------------------------------------------------------------
struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  uint16_t min_version = kMinVersion;
  uint16_t max_version = kMaxVersion;
  uint32_t client_pid = 0;  // informational; the server trusts SO_PEERCRED only
  std::string client_name;
  bool operator==(const Hello&) const = default;
};

enum HelloFlags : uint16_t {
  kHelloDevicePmem = 1u << 0,      // real pmem: flush with cache flushes (else msync)
  kHelloDeviceWritable = 1u << 1,  // the fd passed is read-write (writable maps possible)
  kHelloReadOnlyFs = 1u << 2,      // the filesystem is read-only: no writable maps
};
struct HelloReply {
  static constexpr MessageType kType = MessageType::kHelloReply;
  uint16_t version = kMaxVersion;  // chosen for the rest of the session
  uint16_t flags = 0;              // HelloFlags
  uint32_t block_size = 4096;
  uint64_t device_size = 0;
  uint32_t server_pid = 0;
  uint64_t session_id = 0;
  uint32_t max_files = 0;
  uint32_t max_mappings = 0;
  uint32_t recall_timeout_ms = 0;
  bool operator==(const HelloReply&) const = default;
};

struct ErrorReply {
  static constexpr MessageType kType = MessageType::kError;
  uint32_t code = 0;  // errno
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

struct OkReply {
  static constexpr MessageType kType = MessageType::kOk;
  bool operator==(const OkReply&) const = default;
};

enum OpenFlags : uint32_t { kOpenRead = 1u << 0, kOpenWrite = 1u << 1 };
struct Open {
  static constexpr MessageType kType = MessageType::kOpen;
  uint32_t flags = kOpenRead;  // OpenFlags, at least one
  std::string path;            // absolute
  bool operator==(const Open&) const = default;
};

struct OpenReply {
  static constexpr MessageType kType = MessageType::kOpenReply;
  uint64_t file_id = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool operator==(const OpenReply&) const = default;
};

struct Close {
  static constexpr MessageType kType = MessageType::kClose;
  uint64_t file_id = 0;
  bool operator==(const Close&) const = default;
};

enum MapProtCode : uint8_t { kProtRead = 1, kProtReadWrite = 3 };
struct Map {
  static constexpr MessageType kType = MessageType::kMap;
  uint64_t file_id = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint8_t prot = kProtRead;
  bool operator==(const Map&) const = default;
};

struct MapReply {
  static constexpr MessageType kType = MessageType::kMapReply;
  uint64_t mapping_id = 0;
  uint64_t file_offset = 0;
  uint64_t length = 0;  // whole pages
  uint8_t prot = kProtRead;
  uint32_t total_segments = 0;    // of the whole layout; more than `segments`: LayoutMore follows
  std::vector<Segment> segments;  // the first ones, in file order
  bool operator==(const MapReply&) const = default;
};

struct LayoutMore {
  static constexpr MessageType kType = MessageType::kLayoutMore;
  uint64_t mapping_id = 0;
  uint64_t sequence = 0;  // 0: continues the MapReply; else the LayoutRecall of that sequence
  std::vector<Segment> segments;
  bool operator==(const LayoutMore&) const = default;
};

struct MapAck {
  static constexpr MessageType kType = MessageType::kMapAck;
  uint64_t mapping_id = 0;
  uint64_t address = 0;  // the mapping's base in the client's address space
  bool operator==(const MapAck&) const = default;
};

struct Unmap {
  static constexpr MessageType kType = MessageType::kUnmap;
  uint64_t mapping_id = 0;
  bool operator==(const Unmap&) const = default;
};

struct LayoutRecall {
  static constexpr MessageType kType = MessageType::kLayoutRecall;
  uint64_t mapping_id = 0;
  uint64_t sequence = 0;     // per mapping, from 1, increasing
  uint64_t file_offset = 0;  // the changed range (inside the mapping)
  uint64_t length = 0;
  uint32_t total_segments = 0;
  std::vector<Segment> segments;  // the new layout of the range
  bool operator==(const LayoutRecall&) const = default;
};

struct RecallAck {
  static constexpr MessageType kType = MessageType::kRecallAck;
  uint64_t mapping_id = 0;
  uint64_t sequence = 0;
  uint32_t status = 0;  // 0, or the errno of a failed remap (the range is then fenced)
  bool operator==(const RecallAck&) const = default;
};

enum NoticeFlags : uint32_t {
  kNoticeActionRequired = 1u << 0,
  kNoticeRemoval = 1u << 1,
  kNoticeConsumed = 1u << 2,
};
struct FailureNotice {
  static constexpr MessageType kType = MessageType::kFailureNotice;
  uint64_t mapping_id = 0;
  uint64_t offset = 0;  // inside the mapping, page-aligned
  uint64_t length = 0;  // whole pages
  uint64_t file_offset = 0;
  uint64_t device_offset = kNoDevice;
  uint32_t flags = 0;  // NoticeFlags
  bool operator==(const FailureNotice&) const = default;
};

enum FaultFlags : uint32_t { kFaultFenceTrap = 1u << 0 };
struct ReportFault {
  static constexpr MessageType kType = MessageType::kReportFault;
  uint64_t mapping_id = 0;
  uint64_t offset = 0;  // of the faulting address inside the mapping
  uint32_t signo = 0;
  int32_t code = 0;    // si_code
  uint32_t flags = 0;  // FaultFlags
  uint8_t address_lsb = 12;
  bool operator==(const ReportFault&) const = default;
};

enum InjectMode : uint8_t { kInjectDevice = 1, kInjectPath = 2 };
struct InjectError {
  static constexpr MessageType kType = MessageType::kInjectError;
  uint8_t mode = kInjectDevice;
  uint64_t offset = 0;  // device offset, or file offset of `path`
  uint64_t length = 4096;
  std::string path;  // kInjectPath only (else empty)
  bool operator==(const InjectError&) const = default;
};

enum InjectFlags : uint32_t {
  kInjectShutDown = 1u << 0,
  kInjectUnmounted = 1u << 1,
  kInjectMetadataHit = 1u << 2
};
struct InjectReply {
  static constexpr MessageType kType = MessageType::kInjectReply;
  uint64_t offset = 0;  // the failed device range
  uint64_t length = 0;
  uint32_t flags = 0;    // InjectFlags
  uint32_t notices = 0;  // mapping pieces told (every process)
  std::vector<FileLoss> owners;
  std::vector<Range> retired;
  std::vector<std::string> actions;
  std::string message;
  bool operator==(const InjectReply&) const = default;
};

struct Errors {
  static constexpr MessageType kType = MessageType::kErrors;
  bool operator==(const Errors&) const = default;
};

struct ErrorsReply {
  static constexpr MessageType kType = MessageType::kErrorsReply;
  std::vector<FileLoss> lost;
  std::vector<Range> retired;
  std::vector<Piece> metadata_damage;
  std::vector<Range> bad;
  std::string incomplete;
  bool operator==(const ErrorsReply&) const = default;
};

struct StatusRequest {
  static constexpr MessageType kType = MessageType::kStatus;
  bool operator==(const StatusRequest&) const = default;
};

struct SessionInfo {
  uint64_t session_id = 0;
  int32_t pid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t files = 0;
  uint32_t mappings = 0;
  bool operator==(const SessionInfo&) const = default;
};
enum StatusFlags : uint32_t { kStatusReadOnlyFs = 1u << 0, kStatusPmem = 1u << 1 };
struct StatusReply {
  static constexpr MessageType kType = MessageType::kStatusReply;
  uint32_t server_pid = 0;
  uint32_t flags = 0;  // StatusFlags
  uint64_t device_size = 0;
  uint64_t recalls = 0;  // layout recalls sent since start
  uint64_t cutoffs = 0;  // sessions cut off (recall timeout, malformed messages)
  uint64_t notices = 0;  // failure notices sent
  std::vector<SessionInfo> sessions;
  bool operator==(const StatusReply&) const = default;
};

using Body =
    std::variant<Hello, HelloReply, ErrorReply, OkReply, Open, OpenReply, Close, Map, MapReply,
                 LayoutMore, MapAck, Unmap, LayoutRecall, RecallAck, FailureNotice, ReportFault,
                 InjectError, InjectReply, Errors, ErrorsReply, StatusRequest, StatusReply>;

struct Message {
  Header header;
  Body body;
};

MessageType TypeOf(const Body& body);

// ---- Encoding ----------------------------------------------------------------------------------
// The whole message (header + body) for `body`. The body must fit kMaxBody (callers split
// layouts with kMaxSegmentsPerMessage; strings are cut to kMaxString).
std::vector<uint8_t> Encode(const Body& body, uint64_t request_id = 0,
                            uint16_t version = kMaxVersion);
// Into a caller's buffer, without allocating (signal handlers: ReportFault), under the
// session's negotiated `version`. Returns the size written, or 0 if `out` is too small.
size_t EncodeReportFault(const ReportFault& fault, uint8_t* out, size_t size,
                         uint16_t version = kMaxVersion);

// ---- Decoding: every malformed input is an error, never a crash ---------------------------------
// EPROTO: bad magic, unsupported version, non-zero flags, a body length that disagrees with the
// message; EMSGSIZE: larger than kMaxMessage. Unknown types decode (the caller answers them).
Result<Header> DecodeHeader(std::span<const uint8_t> message);
// The body of a known type (EOPNOTSUPP for an unknown one). EPROTO for a truncated body, bytes
// left over, a string or list past the body or over its limit, a bad enum value.
Result<Body> DecodeBody(const Header& header, std::span<const uint8_t> body);
// Both, for one whole message.
Result<Message> Decode(std::span<const uint8_t> message);

}  // namespace daxfs::proto
