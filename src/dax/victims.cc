// Victim lists: the one normal form every design answers in.
#include <algorithm>

#include "dax/tracker.h"

namespace daxfs::dax {

void NormalizeVictims(std::vector<Victim>* victims) {
  std::sort(victims->begin(), victims->end(), [](const Victim& a, const Victim& b) {
    return a.mapping_id != b.mapping_id ? a.mapping_id < b.mapping_id : a.address < b.address;
  });
  std::vector<Victim> out;
  for (const Victim& v : *victims) {
    if (!out.empty()) {
      Victim& last = out.back();
      if (last.mapping_id == v.mapping_id && last.address + last.length == v.address &&
          last.file_offset + last.length == v.file_offset &&
          last.device_offset + last.length == v.device_offset) {
        last.length += v.length;
        continue;
      }
    }
    out.push_back(v);
  }
  *victims = std::move(out);
}

}  // namespace daxfs::dax
