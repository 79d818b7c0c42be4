#pragma once
/// Fixed-size buffers that connections borrow while they have bytes to read or write and give
/// back when idle, so an idle keep-alive connection holds no buffer at all (Pariag et al. and
/// the SXE posts both measure memory per idle connection).
///
/// Two levels: each thread keeps a free list of its own (no lock), and a thread whose list is
/// full moves a batch of buffers to one shared, bounded overflow list, from which a thread whose
/// list is empty takes a batch before it calls malloc. So buffers that cross threads (acquired
/// by one, released by another, as in the pipeline backend) come back to the acquiring thread
/// for one lock per batch instead of being freed by one thread and allocated by another.
#include <cstddef>

namespace httpbench::core {

inline constexpr size_t buffer_size = 16 * 1024;

/// Most free buffers the shared overflow list holds; beyond it, released buffers go back to
/// malloc, so memory freed after a burst is not pinned for ever.
inline constexpr size_t shared_free_buffers_limit = 2048;

/// With the per-thread lists off (set_buffer_cache_limit(0)): most free buffers the shared list
/// keeps, enough for the requests being served at one moment on a few CPUs (1 MiB), however many
/// threads sit idle.
inline constexpr size_t shared_free_buffers_without_cache = 64;

/// Of those, how many wait in slots taken and given without the shared list's lock (one atomic
/// exchange each): the last few released, which the next requests take.
inline constexpr size_t quick_free_buffers = 4;

/// A buffer of buffer_size bytes, from this thread's free list, else the shared overflow list,
/// else malloc. Never null; throws std::bad_alloc when malloc fails.
char* acquire_buffer();

/// Gives a buffer back (any thread may release any buffer; null is ignored): to this thread's
/// free list, or, when that is full, with a batch of it to the shared overflow list, or to
/// free() when both are full.
void release_buffer(char* buffer) noexcept;

/// Acquires `buffers` buffers and gives them back: this thread's free list is set up (its
/// thread-exit destructor registered) and holds them. A process that forks a child per
/// connection (supervisor::spawn_one) calls it once before its first fork, so that each child
/// does not do that work itself: the registration's first call goes through the C++ runtime's
/// lazily bound PLT (the dynamic linker's symbol lookup, in every child) and the mallocs write
/// heap pages the child shares with its parent (copy-on-write faults) — a third of a fork
/// child's page faults here.
void prime_buffer_pool(size_t buffers);

/// How many free buffers each thread keeps (default and maximum 256). 0 turns the per-thread
/// lists off: every acquire and release goes to the shared list (its quick slots, else its lock
/// once), which then keeps at most shared_free_buffers_without_cache (beyond it, free()).
/// Backends with a thread per connection set 0: each of their threads serves one connection,
/// so a per-thread cache would pin up to two buffers to every idle thread, while the shared
/// handful is reused by whichever thread has a request (a malloc and a free of 16 KiB per
/// request cost 2 % of threadpool's CPU under wrk keep-alive; one uncontended lock each way
/// costs a tenth of that, a quick slot less). Call before starting threads.
void set_buffer_cache_limit(size_t buffers_per_thread);

}  // namespace httpbench::core
