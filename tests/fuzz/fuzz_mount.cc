// libFuzzer target: mount and check a whole image. Input: the first bytes of a 1 MiB image
// (the rest zero). Mount, the full check and a scan of the scratch tree must return errors for
// anything malformed, never crash, hang or read outside the device.
#include <cstdint>
#include <cstring>
#include <string>

#include "btree/btree.h"
#include "device/device.h"
#include "txn/pool.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kImage = 1 << 20;
  std::string image(kImage, '\0');
  std::memcpy(image.data(), data, std::min(size, kImage));
  auto dev = daxfs::device::NewMemoryDevice(image);
  auto pool = daxfs::txn::Pool::Open(dev.get(), {.read_only = true});
  if (!pool.ok()) return 0;
  (*pool)->RegisterTree(daxfs::txn::ScratchSpec());
  (void)(*pool)->Check();
  auto view = (*pool)->BeginRead();
  auto tree = view->Tree(daxfs::txn::ScratchSpec());
  if (!tree.ok()) return 0;
  daxfs::btree::Cursor c(&*tree);
  int n = 0;
  for (daxfs::Status s = c.SeekFirst(); s.ok() && c.Valid() && n < 100000; s = c.Next()) ++n;
  return 0;
}
