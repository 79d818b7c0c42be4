// sped — Single-Process Event-Driven server (Pariag et al. 2007 §2.1, the userver/Flash SPED
// model; the "hand-written event-driven" point of Kerneis & Chroboczek 2009 §3).
//
// One process, one thread, non-blocking sockets and one readiness loop. What decides its
// performance: (1) it accepts until EAGAIN on every listen event, so a burst of connects costs
// one wake-up (Brecht et al.'s finding for the userver); (2) it writes a response as soon as the
// request is parsed and asks for writability (EPOLLOUT) only after a short write, so a keep-alive
// request costs one read and one writev and no epoll_ctl.
// `--set poller=epoll|poll|select` swaps the notification mechanism (von Leitner 2003) without
// touching the rest: the loop is a template over the poller.
// The loop itself is core::event_loop (servers/core/event_loop.hpp), shared with symped.
#include "core/event_loop.hpp"
#include "core/poller.hpp"
#include "core/server.hpp"

namespace httpbench::backend {

const core::backend_info info{
    .name = "sped",
    .model = "event-driven, single process (SPED)",
    .summary = "one process, one thread, non-blocking sockets, one readiness loop",
    .paper = "Pariag et al. 2007 §2.1; Kerneis & Chroboczek 2009 §3",
    .category = core::backend_category::event,
    .default_workers = 1,
    .max_connections = 10000,
    .tunables = {{"poller", "epoll", {"epoll", "poll", "select"},
                  "event notification mechanism (select is limited to FD_SETSIZE=1024 fds)"}},
};

int run(core::server_context& ctx) {
  core::event_loop_options options{.listen_fd = ctx.listener.get()};
  std::string_view poller = ctx.setting("poller");
  if (poller == "poll") return core::event_loop<core::poll_poller>(ctx, options).run();
  if (poller == "select") return core::event_loop<core::select_poller>(ctx, options).run();
  return core::event_loop<core::epoll_poller>(ctx, options).run();
}

}  // namespace httpbench::backend
