// The engine's pieces behind a DaxFs, for the other parts of the engine layer (layout_host.cc):
// the filesystem's face, the mapping table and the failure router. Not a public header; knows
// nothing of the daemon or the protocol.
#pragma once

#include "dax/mapping_table.h"
#include "daxfs/dax.h"
#include "failure/router.h"
#include "fs/face.h"

namespace daxfs::engine {

struct EngineParts {
  fs::FsFace* fs = nullptr;
  dax::MappingTable* table = nullptr;
  failure::Router* router = nullptr;
};

// `dax` must be one DaxFs::Open made (every DaxFs is).
EngineParts PartsOf(DaxFs& dax);

}  // namespace daxfs::engine
