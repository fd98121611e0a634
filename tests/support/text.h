// Splitting what a command printed.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace migwatch::testing {

/// `text` split at newlines.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace migwatch::testing
