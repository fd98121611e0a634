// Time for the tests: seconds as doubles, deadlines, pauses.
#pragma once

#include <chrono>
#include <cmath>
#include <thread>

namespace migwatch::testing {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// `seconds` after `start`; never, for an infinite number.
inline Clock::time_point After(Clock::time_point start, double seconds) {
  if (std::isinf(seconds)) return Clock::time_point::max();
  return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

/// Sleeps `seconds`.
inline void Pause(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

}  // namespace migwatch::testing
