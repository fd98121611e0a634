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
/// are busiest now keep a series of their own.
///
/// A value gets its own label if a slot is free, or if the value holding the
/// least recently active slot has been idle for longer than `idle_after`: that
/// value is evicted (its series should be dropped; TakeEvicted() lists it) and
/// the new value takes the slot. Otherwise the value maps to "other".
///
/// Slots also follow the activity reported with Observe(): ReassignSlots()
/// ranks every value by its share of the recent activity (each measure's
/// growth, halved at every call, so the last few calls weigh most; a value
/// ranks by whichever measure it has the larger share of) and gives the
/// busiest values without a slot those of the quietest holders, which are
/// evicted. A value takes a slot only with at least kDisplaceFactor times the
/// holder's share, so that two values about as busy do not swap at every
/// call, and at least kMinShareOfEvenSplit / cap() of all recent activity, so
/// that many values that are all about as quiet do not take turns.
///
/// A value never moves between series while it holds a slot, and "other" only
/// ever receives growth, so every counter series stays monotonic. The series
/// of an evicted value should be exported once more with its final value at
/// the next ReassignSlots() (for a value evicted by ReassignSlots(), just
/// before it), then dropped; the value maps to "other" until an export has
/// shown its series ended, and then starts a new series if it gets a slot
/// again. A series that ended and one that started between two exports would
/// look like one series that went on.
///
/// The literal value "other" never takes a slot and is not counted by
/// folded_values().
///
/// Memory: the slot values, plus one 64-bit hash per distinct folded value, up
/// to kMaxRememberedFolds hashes; beyond that folded_values() keeps growing
/// but may count a value again. The values evicted since the ReassignSlots()
/// before the last (without ReassignSlots(), every value ever evicted). The
/// recent activity of at most max(kMaxRankedValues, 2 * cap()) values: values
/// first seen beyond that are not ranked until others went quiet, and the
/// quietest are forgotten.
///
/// Not thread-safe: use one folder per thread or guard it with a lock.
class LabelFolder {
 public:
  using Clock = std::chrono::steady_clock;

  /// The label every value beyond the cap maps to.
  static constexpr std::string_view kOther = "other";
  static constexpr std::size_t kMaxRememberedFolds = 1 << 16;
  static constexpr std::size_t kMaxRankedValues = 1 << 12;
  /// How many times a holder's share of the recent activity a value needs to
  /// take its slot.
  static constexpr double kDisplaceFactor = 2.0;
  /// The least share of the recent activity that takes a slot, as a part of
  /// an even split between the slots.
  static constexpr double kMinShareOfEvenSplit = 0.25;

  /// What a value did, in the measures slots are ranked by.
  struct Activity {
    std::uint64_t migrations = 0;
    std::uint64_t stopper_ns = 0;
  };

  /// `cap` is the number of values that may get their own label; it must be
  /// at least 1, and std::invalid_argument is thrown otherwise.
  explicit LabelFolder(std::size_t cap, Clock::duration idle_after = std::chrono::minutes(10));

  /// The label to charge activity of `value` to, at time `now`. Call it only
  /// when the value is active (its counters grew): that is what keeps its
  /// slot. The reference is valid until the next call.
  const std::string& Label(std::string_view value, Clock::time_point now = Clock::now());

  /// Adds to the recent activity of `value`, by which ReassignSlots() ranks
  /// it. Report all the activity of every value, in or out of a slot.
  void Observe(std::string_view value, const Activity& grew);
  /// Gives the slots of the quietest holders to the busiest values without
  /// one, as the class comment says, then halves every recent activity. The
  /// evicted holders are listed by TakeEvicted(). Call it at a steady pace
  /// (each time the counts are exported): the halving sets how far back
  /// "recent" reaches.
  void ReassignSlots(Clock::time_point now = Clock::now());

  /// Values evicted since the last call, whose series should be dropped
  /// once exported with their final value (see the class comment).
  std::vector<std::string> TakeEvicted();
  /// Whether `value` has a label of its own now.
  bool Holds(std::string_view value) const { return slots_.count(std::string(value)) != 0; }

  /// Distinct values (other than "other") that were mapped to "other".
  std::size_t folded_values() const { return folded_count_; }
  /// The number of values that may get their own label.
  std::size_t cap() const { return cap_; }
  /// The values whose recent activity is kept.
  std::size_t ranked_values() const { return recent_.size(); }

 private:
  // Activity since the last ReassignSlots(), plus half of what it was then.
  struct RecentActivity {
    double migrations = 0;
    double stopper_ns = 0;
  };
  RecentActivity AllRecent() const;
  // Which part of `all` `value` did, by whichever measure the part is larger.
  double ShareOfRecent(const std::string& value, const RecentActivity& all) const;
  void ForgetQuietValues();
  // "other", counting `value` among the folded values.
  const std::string& Folded(std::string_view value);
  void Evict(const std::string& value, int rests);

  std::size_t cap_;
  Clock::duration idle_after_;
  std::unordered_map<std::string, Clock::time_point> slots_;  // value -> last active
  std::size_t max_ranked_;
  std::unordered_map<std::string, RecentActivity> recent_;
  std::vector<std::string> evicted_;
  // Evicted values -> the ReassignSlots() calls before they may take a slot.
  std::unordered_map<std::string, int> resting_;
  std::unordered_set<std::uint64_t> folded_hashes_;
  std::size_t folded_count_ = 0;
};

}  // namespace migwatch
