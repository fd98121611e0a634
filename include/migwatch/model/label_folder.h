// Bounding the number of values of a Prometheus label.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace migwatch {

/// Folds an unbounded set of label values into at most cap() values plus
/// "other", so that the number of series stays bounded while the values that
/// are active now keep a series of their own.
///
/// A value gets its own label if a slot is free, or if the value holding the
/// least recently active slot has been idle for longer than `idle_after`: that
/// value is evicted (its series should be dropped; TakeEvicted() lists it) and
/// the new value takes the slot. Otherwise the value maps to "other". A value
/// never moves between series while it holds a slot, and "other" only ever
/// receives growth, so every counter series stays monotonic; an evicted value
/// that comes back starts a new series.
///
/// The literal value "other" never takes a slot and is not counted by
/// folded_values().
///
/// Memory: the slot values, plus one 64-bit hash per distinct folded value, up
/// to kMaxRememberedFolds hashes; beyond that folded_values() keeps growing
/// but may count a value again.
///
/// Not thread-safe: use one folder per thread or guard it with a lock.
class LabelFolder {
 public:
  using Clock = std::chrono::steady_clock;

  /// The label every value beyond the cap maps to.
  static constexpr std::string_view kOther = "other";
  static constexpr std::size_t kMaxRememberedFolds = 1 << 16;

  /// `cap` is the number of values that may get their own label; it must be
  /// at least 1, and std::invalid_argument is thrown otherwise.
  explicit LabelFolder(std::size_t cap, Clock::duration idle_after = std::chrono::minutes(10));

  /// The label to charge activity of `value` to, at time `now`. Call it only
  /// when the value is active (its counters grew): that is what keeps its
  /// slot. The reference is valid until the next call.
  const std::string& Label(std::string_view value, Clock::time_point now = Clock::now());

  /// Values evicted since the last call, whose series should be dropped.
  std::vector<std::string> TakeEvicted();
  /// Whether `value` has a label of its own now.
  bool Holds(std::string_view value) const { return slots_.count(std::string(value)) != 0; }

  /// Distinct values (other than "other") that were mapped to "other".
  std::size_t folded_values() const { return folded_count_; }
  /// The number of values that may get their own label.
  std::size_t cap() const { return cap_; }

 private:
  std::size_t cap_;
  Clock::duration idle_after_;
  std::unordered_map<std::string, Clock::time_point> slots_;  // value -> last active
  std::vector<std::string> evicted_;
  std::unordered_set<std::uint64_t> folded_hashes_;
  std::size_t folded_count_ = 0;
};

}  // namespace migwatch
