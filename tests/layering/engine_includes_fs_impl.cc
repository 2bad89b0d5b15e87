// Layering probe: the engine (which links the scrub layer, which links fs's insides privately)
// including the filesystem engine's insides. Must not compile.
#include "fs/fs_impl.h"
