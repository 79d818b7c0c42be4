#pragma once
/// For backends that fork processes which each serve one connection at a time (fork, prefork):
/// the child side of stopping, shared so the two models differ only in when they fork.
#include <signal.h>
#include <sys/types.h>

namespace httpbench::core {

/// Call first in a freshly forked child. SIGTERM/SIGINT then set stop_flag and end reading on
/// the connection being served (see serving()), so requests already received are answered and
/// an idle keep-alive connection closes at once, instead of waking the parent's stop eventfd;
/// SIGCHLD is back to its default, no signal is blocked, and the child receives `death_signal`
/// if `parent` dies. Returns false when `parent` is already gone.
bool become_worker_process(pid_t parent, int death_signal);

/// Tells the stop handler which socket the worker serves (-1: none). Setting a socket after the
/// stop arrived ends its reading at once.
void serving(int fd);

/// Parent side: SIGCHLD gets a no-op handler and is blocked, except while the parent waits in
/// ppoll() with the returned mask, so a child's exit interrupts exactly that wait and cannot be
/// lost between a reap and the wait. `previous` receives the mask to restore at the end.
sigset_t wake_on_child_exit(sigset_t& previous);

}  // namespace httpbench::core
