#include "migwatch/model/label_folder.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <utility>

namespace migwatch {
namespace {

const std::string& OtherLabel() {
  static const std::string other(LabelFolder::kOther);
  return other;
}

using RankedValue = std::pair<double, std::string>;  // share of the recent activity, value

}  // namespace

LabelFolder::LabelFolder(std::size_t cap, Clock::duration idle_after)
    : cap_(cap), idle_after_(idle_after), max_ranked_(std::max(kMaxRankedValues, 2 * cap)) {
  if (cap == 0) throw std::invalid_argument("LabelFolder: cap must be at least 1");
}

const std::string& LabelFolder::Label(std::string_view value, Clock::time_point now) {
  if (value == kOther) return OtherLabel();
  std::string key(value);
  if (auto slot = slots_.find(key); slot != slots_.end()) {
    slot->second = now;
    return slot->first;
  }
  if (resting_.count(key)) return Folded(value);
  if (slots_.size() >= cap_) {
    // The cap is small (tens): a scan is cheaper than keeping an order.
    auto idlest = slots_.begin();
    for (auto it = slots_.begin(); it != slots_.end(); ++it)
      if (it->second < idlest->second) idlest = it;
    if (now - idlest->second <= idle_after_) return Folded(value);
    // Its series is exported once more at the next ReassignSlots() and seen
    // ended at the one after.
    Evict(idlest->first, 2);
    slots_.erase(idlest);
  }
  return slots_.emplace(std::move(key), now).first->first;
}

const std::string& LabelFolder::Folded(std::string_view value) {
  if (folded_hashes_.size() >= kMaxRememberedFolds) folded_hashes_.clear();
  if (folded_hashes_.insert(std::hash<std::string_view>{}(value)).second) ++folded_count_;
  return OtherLabel();
}

void LabelFolder::Evict(const std::string& value, int rests) {
  evicted_.push_back(value);
  resting_[value] = rests;
}

void LabelFolder::Observe(std::string_view value, const Activity& grew) {
  if (value == kOther) return;
  auto it = recent_.find(std::string(value));
  if (it == recent_.end()) {
    if (recent_.size() >= max_ranked_) return;
    it = recent_.emplace(std::string(value), RecentActivity{}).first;
  }
  it->second.migrations += static_cast<double>(grew.migrations);
  it->second.stopper_ns += static_cast<double>(grew.stopper_ns);
}

LabelFolder::RecentActivity LabelFolder::AllRecent() const {
  RecentActivity all;
  for (const auto& [value, recent] : recent_) {
    all.migrations += recent.migrations;
    all.stopper_ns += recent.stopper_ns;
  }
  return all;
}

double LabelFolder::ShareOfRecent(const std::string& value, const RecentActivity& all) const {
  auto it = recent_.find(value);
  if (it == recent_.end()) return 0;
  double share = all.migrations > 0 ? it->second.migrations / all.migrations : 0;
  if (all.stopper_ns > 0) share = std::max(share, it->second.stopper_ns / all.stopper_ns);
  return share;
}

void LabelFolder::ReassignSlots(Clock::time_point now) {
  // One more export has shown the series of the resting values ended.
  for (auto it = resting_.begin(); it != resting_.end();) {
    if (--it->second == 0)
      it = resting_.erase(it);
    else
      ++it;
  }
  const RecentActivity all = AllRecent();
  std::vector<RankedValue> holders, challengers;
  for (const auto& [value, last_active] : slots_) holders.emplace_back(ShareOfRecent(value, all), value);
  for (const auto& [value, recent] : recent_)
    if (!slots_.count(value) && !resting_.count(value)) challengers.emplace_back(ShareOfRecent(value, all), value);
  std::sort(holders.begin(), holders.end());
  std::sort(challengers.begin(), challengers.end(), std::greater<>());
  // The busiest challenger against the quietest holder, the next against
  // the next: once one pair does not swap, no later pair would.
  const double min_share = kMinShareOfEvenSplit / static_cast<double>(cap_);
  for (std::size_t i = 0; i < holders.size() && i < challengers.size(); ++i) {
    const auto& [busy_share, challenger] = challengers[i];
    const auto& [quiet_share, holder] = holders[i];
    if (busy_share < min_share || busy_share < kDisplaceFactor * quiet_share) break;
    // Its series was just exported for the last time: the next export
    // shows it ended.
    Evict(holder, 1);
    slots_.erase(holder);
    slots_.emplace(challenger, now);
  }
  for (auto& [value, recent] : recent_) {
    recent.migrations /= 2;
    recent.stopper_ns /= 2;
  }
  ForgetQuietValues();
}

void LabelFolder::ForgetQuietValues() {
  // Less than one migration and one nanosecond of recent activity is none.
  std::erase_if(recent_, [this](const auto& entry) {
    return entry.second.migrations < 1 && entry.second.stopper_ns < 1 && !slots_.count(entry.first);
  });
  // Half the room stays free for the values first seen before the next call.
  if (recent_.size() <= max_ranked_ / 2) return;
  const RecentActivity all = AllRecent();
  std::vector<RankedValue> quietest;
  for (const auto& [value, recent] : recent_)
    if (!slots_.count(value)) quietest.emplace_back(ShareOfRecent(value, all), value);
  const std::size_t excess = std::min(recent_.size() - max_ranked_ / 2, quietest.size());
  std::nth_element(quietest.begin(), quietest.begin() + excess, quietest.end());
  for (std::size_t i = 0; i < excess; ++i) recent_.erase(quietest[i].second);
}

std::vector<std::string> LabelFolder::TakeEvicted() { return std::exchange(evicted_, {}); }

}  // namespace migwatch
