#pragma once
// Names the calling thread, so per-thread CPU can be read from /proc/PID/task/*/{comm,stat}.

#include <pthread.h>

namespace pprofd {

// Linux keeps at most 15 characters; a longer name leaves the thread's name unchanged.
inline void set_thread_name(const char* name) { ::pthread_setname_np(::pthread_self(), name); }

}  // namespace pprofd
