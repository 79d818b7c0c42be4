#pragma once
/// Fixed-size buffers that connections borrow while they have bytes to read or write and give
/// back when idle, so an idle keep-alive connection holds no buffer at all (Pariag et al. and
/// the SXE posts both measure memory per idle connection).
#include <cstddef>

namespace httpbench::core {

inline constexpr size_t buffer_size = 16 * 1024;

/// A buffer of buffer_size bytes from this thread's free list (or a new one). Never null.
char* acquire_buffer();

/// Returns a buffer to this thread's free list (any thread may release any buffer).
void release_buffer(char* buffer) noexcept;

/// How many free buffers each thread keeps (default 256). Backends with a thread per
/// connection set 0: each of their threads serves one connection, so a per-thread cache would
/// pin up to two buffers to every idle thread, while malloc's shared arenas let the threads
/// reuse each other's. Call before starting threads.
void set_buffer_cache_limit(size_t buffers_per_thread);

}  // namespace httpbench::core
