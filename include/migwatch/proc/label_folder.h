// Bounding the number of values of a Prometheus label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

namespace migwatch {

/// Folds an unbounded set of label values into at most cap() values plus
/// "other", without ever moving a value from one series to another, so that
/// every counter series stays monotonic.
///
/// Values get their own label first come, first served, and keep it for the
/// life of the folder. Once cap() values hold a slot, every new value maps to
/// "other". The literal value "other" never takes a slot: it maps to "other",
/// the series meaning "any value without a label of its own", and is not
/// counted by folded_values().
///
/// Memory: the slot values, plus one 64-bit hash per distinct folded value
/// (hashes rather than strings, so that a stream of unique values costs little;
/// two folded values with the same hash are counted once).
///
/// Not thread-safe: use one folder per thread or guard it with a lock.
class LabelFolder {
 public:
  /// The label every value beyond the cap maps to.
  static constexpr std::string_view kOther = "other";

  /// `cap` is the number of values that may get their own label; it must be
  /// at least 1, and std::invalid_argument is thrown otherwise.
  explicit LabelFolder(std::size_t cap);

  /// The label to use for `value`: `value` itself if it holds a slot or a slot
  /// is free, else "other". The reference stays valid for the life of the
  /// folder, also after the folder is moved.
  const std::string& Label(std::string_view value);

  /// Distinct values (other than "other") that were mapped to "other".
  std::size_t folded_values() const { return folded_hashes_.size(); }

  /// The number of values that may get their own label.
  std::size_t cap() const { return cap_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::size_t cap_;
  // Node-based: references to elements survive rehashing, which Label()
  // relies on to return stable references.
  std::unordered_set<std::string, StringHash, std::equal_to<>> slots_;
  std::unordered_set<std::uint64_t> folded_hashes_;
};

}  // namespace migwatch
