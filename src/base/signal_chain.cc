// Handing a signal that is not ours to the action installed before us (base/signal_chain.h).
// Async-signal-safe.
#include "base/signal_chain.h"

#include <cstring>

namespace daxfs::base {

void RestoreDefaultAndUnblock(int signo) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

void ChainSignal(const struct sigaction& prev, int signo, siginfo_t* si, void* context) {
  if ((prev.sa_flags & SA_SIGINFO) != 0) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(signo, si, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(signo);
    return;
  }
  // A fault re-executes on return (and now meets the default action); a signal that was sent,
  // or an AO report, does not repeat, so it is raised again.
  const bool sent = si == nullptr || si->si_code <= 0;
  const bool repeats = !sent && !(signo == SIGBUS && si->si_code == BUS_MCEERR_AO);
  if (prev.sa_handler == SIG_IGN && !repeats) return;  // ignored, as before we were installed
  RestoreDefaultAndUnblock(signo);
  if (!repeats) raise(signo);
}

}  // namespace daxfs::base
