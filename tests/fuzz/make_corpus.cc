// Writes the seed corpora for the fuzz targets from real images made by the engine:
//   make_corpus <corpus-dir>   creates <dir>/superblock, <dir>/btree_node, <dir>/mount.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "base/coding.h"
#include "device/device.h"
#include "format/btree_node.h"
#include "format/layout.h"
#include "txn/pool.h"

namespace {

void Write(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace daxfs;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus-dir>\n");
    return 2;
  }
  std::string dir = argv[1];
  for (const char* sub : {"", "/superblock", "/btree_node", "/mount"}) ::mkdir((dir + sub).c_str(), 0755);
  auto dev = device::NewMemoryDevice(1 << 20);
  auto pool = txn::Pool::Format(dev.get(), {.chunk_size = 256 << 10, .label = "fuzz"});
  if (!pool.ok()) return 1;
  for (int round = 0; round < 3; ++round) {
    auto txn = *(*pool)->BeginWrite();
    btree::BTree* t = *txn->Tree(txn::ScratchSpec());
    for (uint64_t i = 0; i < 150; ++i) {
      uint8_t v[24] = {};
      base::EncodeU64(v, i * round);
      (void)t->Put(btree::Key{{i * 3 + round, i}}, v);
    }
    if (!txn->Commit().ok()) return 1;
    std::string n = std::to_string(round);
    Write(dir + "/superblock/sb" + n, dev->base(), 2 * format::kBlockSize);
    Write(dir + "/mount/image" + n, dev->base(), 48 * format::kBlockSize);
  }
  // Every B+tree node of the image, prefixed with the two shape bytes fuzz_btree_node reads.
  for (uint64_t b = format::kFirstNodeBlock; b < 48; ++b) {
    const uint8_t* block = dev->At(b * format::kBlockSize);
    if (base::DecodeU32(block) != format::kNodeMagic) continue;
    uint16_t tree = format::DecodeBTreeNodeHeader(block).tree_id;
    uint8_t shape[2] = {static_cast<uint8_t>(tree == 1 ? 0 : 1), static_cast<uint8_t>(tree == 1 ? 1 : 2)};
    std::string input(reinterpret_cast<char*>(shape), 2);
    input.append(reinterpret_cast<const char*>(block), format::kBlockSize);
    Write(dir + "/btree_node/node" + std::to_string(b), reinterpret_cast<const uint8_t*>(input.data()),
          input.size());
  }
  return 0;
}
