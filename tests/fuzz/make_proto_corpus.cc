// Writes the seed corpus of fuzz_proto: one file per protocol message type, each a well-formed
// message as a client or the server sends it.   make_proto_corpus <dir>
// Uses only the codec (src/proto).
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "proto/message.h"

int main(int argc, char** argv) {
  using namespace daxfs::proto;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_proto_corpus <dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  ::mkdir(dir.c_str(), 0755);
  const std::vector<Segment> layout = {{0, 8192, 1 << 20, SegmentKind::kData},
                                       {8192, 4096, kNoDevice, SegmentKind::kZero},
                                       {12288, 4096, 3 << 20, SegmentKind::kLost},
                                       {16384, 4096, kNoDevice, SegmentKind::kBeyondEof}};
  const std::vector<Body> samples = {
      Hello{1, 1, 4242, "client"},
      HelloReply{1, kHelloDeviceWritable, 4096, 64 << 20, 77, 1, 1024, 4096, 5000},
      ErrorReply{13, "/data/secret: permission denied"},
      OkReply{},
      Open{kOpenRead | kOpenWrite, "/data/file"},
      OpenReply{1, 17, 20480, 0100644, 0, 0},
      Close{1},
      Map{1, 0, 20480, kProtReadWrite},
      MapReply{1, 0, 20480, kProtRead, 4, layout},
      LayoutMore{1, 0, layout},
      MapAck{1, 0x7f0000000000},
      Unmap{1},
      LayoutRecall{1, 1, 8192, 4096, 1, {{8192, 4096, 5 << 20, SegmentKind::kData}}},
      RecallAck{1, 1, 0},
      FailureNotice{1, 0, 4096, 0, 1 << 20, kNoticeActionRequired},
      ReportFault{1, 100, 11, 2, kFaultFenceTrap, 12},
      InjectError{kInjectPath, 0, 4096, "/data/file"},
      InjectReply{
          1 << 20, 4096, 0, 2, {{17, 0, 4096, 1 << 20, true, "/data/file"}}, {}, {"recorded"}, ""},
      Errors{},
      ErrorsReply{{{17, 0, 4096, 1 << 20, false, "/data/file"}},
                  {{2 << 20, 4096}},
                  {},
                  {{1 << 20, 4096}},
                  ""},
      StatusRequest{},
      StatusReply{77, 0, 64 << 20, 3, 0, 2, {{1, 100, 0, 0, 1, 1}}},
  };
  for (const Body& body : samples) {
    const std::vector<uint8_t> wire = Encode(body, 7);
    std::ofstream out(dir + "/" + MessageTypeName(TypeOf(body)), std::ios::binary);
    out.write(reinterpret_cast<const char*>(wire.data()),
              static_cast<std::streamsize>(wire.size()));
  }
  return 0;
}
