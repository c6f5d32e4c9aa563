#pragma once
// CPU time consumed by the calling thread: what a pipeline stage costs, independent of how
// long it waited to be scheduled.

#include <chrono>
#include <ctime>

namespace pprofd {

inline std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// Accumulates the calling thread's CPU time spent between construction and each lap().
class CpuStopwatch {
 public:
  CpuStopwatch() : last_(thread_cpu_time()) {}
  std::chrono::nanoseconds lap() {
    const auto now = thread_cpu_time();
    const auto spent = now - last_;
    last_ = now;
    return spent;
  }

 private:
  std::chrono::nanoseconds last_;
};

}  // namespace pprofd
