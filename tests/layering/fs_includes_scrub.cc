// Layering probe: the filesystem layer including the scrub layer above it. Must not compile.
#include "scrub/check.h"
