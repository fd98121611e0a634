#include "migwatch/proc/label_folder.h"

#include <stdexcept>

namespace migwatch {
namespace {

// Shared by all folders and never moved, so that references to it stay valid.
const std::string& OtherLabel() {
  static const std::string other(LabelFolder::kOther);
  return other;
}

}  // namespace

LabelFolder::LabelFolder(std::size_t cap) : cap_(cap) {
  if (cap == 0) throw std::invalid_argument("LabelFolder: cap must be at least 1");
}

const std::string& LabelFolder::Label(std::string_view value) {
  if (value == kOther) return OtherLabel();
  if (const auto slot = slots_.find(value); slot != slots_.end()) return *slot;
  if (slots_.size() < cap_) return *slots_.emplace(value).first;
  folded_hashes_.insert(StringHash{}(value));
  return OtherLabel();
}

}  // namespace migwatch
