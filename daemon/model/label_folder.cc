#include "migwatch/model/label_folder.h"

#include <functional>
#include <stdexcept>
#include <utility>

namespace migwatch {
namespace {

const std::string& OtherLabel() {
  static const std::string other(LabelFolder::kOther);
  return other;
}

}  // namespace

LabelFolder::LabelFolder(std::size_t cap, Clock::duration idle_after) : cap_(cap), idle_after_(idle_after) {
  if (cap == 0) throw std::invalid_argument("LabelFolder: cap must be at least 1");
}

const std::string& LabelFolder::Label(std::string_view value, Clock::time_point now) {
  if (value == kOther) return OtherLabel();
  std::string key(value);
  if (auto slot = slots_.find(key); slot != slots_.end()) {
    slot->second = now;
    return slot->first;
  }
  if (slots_.size() >= cap_) {
    // The cap is small (tens): a scan is cheaper than keeping an order.
    auto idlest = slots_.begin();
    for (auto it = slots_.begin(); it != slots_.end(); ++it)
      if (it->second < idlest->second) idlest = it;
    if (now - idlest->second <= idle_after_) {
      if (folded_hashes_.size() >= kMaxRememberedFolds) folded_hashes_.clear();
      if (folded_hashes_.insert(std::hash<std::string_view>{}(value)).second) ++folded_count_;
      return OtherLabel();
    }
    evicted_.push_back(idlest->first);
    slots_.erase(idlest);
  }
  return slots_.emplace(std::move(key), now).first->first;
}

std::vector<std::string> LabelFolder::TakeEvicted() { return std::exchange(evicted_, {}); }

}  // namespace migwatch
