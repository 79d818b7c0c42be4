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

}  // namespace httpbench::core
