// Layering probe: the engine including the scrub layer's checker instead of its face
// (scrub/mount.h). Must not compile.
#include "scrub/check.h"
