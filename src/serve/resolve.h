// Path resolution for a peer: walks an absolute path through a LayoutHost one name at a time,
// checking search permission on every directory and following symlinks (at most 40), like the
// kernel's path walk for open(2). Knows nothing of sessions or sockets.
#pragma once

#include <string_view>

#include "daxfs/layout.h"
#include "serve/access.h"

namespace daxfs::serve {

// The attributes of what `path` names, following a final symlink. ENOENT, ENOTDIR, EACCES
// (naming the directory the peer may not search), ELOOP, ENAMETOOLONG, EINVAL (not absolute).
Result<Attr> ResolveForPeer(LayoutHost& host, const Credentials& who, std::string_view path);

}  // namespace daxfs::serve
