// Layering probe: the filesystem layer including the DAX layer above it. Must not compile.
#include "dax/mapping_table.h"
