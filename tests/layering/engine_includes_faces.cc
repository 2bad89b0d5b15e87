// Layering probe (control): the engine including the faces of the layers below it. Must compile,
// so that the negative probes above fail for the reason they name.
#include "dax/mapping_table.h"
#include "failure/router.h"
#include "fs/face.h"
#include "fs/mapping_hooks.h"
#include "scrub/mount.h"
#include "tracking/trackers.h"
