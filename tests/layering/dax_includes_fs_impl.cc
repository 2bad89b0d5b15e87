// Layering probe: the DAX layer including the filesystem engine's insides instead of its face
// (fs/face.h). Must not compile.
#include "fs/fs_impl.h"
