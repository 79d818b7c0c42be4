// The event loop over the three real pollers; the definitions are in event_loop_impl.hpp.
#include "event_loop_impl.hpp"

namespace httpbench::core {

template class event_loop<epoll_poller>;
template class event_loop<poll_poller>;
template class event_loop<select_poller>;

}  // namespace httpbench::core
