// Writes or checks what is generated from the metric catalogue
// (daemon/export/catalogue.cc): the README's metric table, between its
// <!-- metrics-table --> markers, and tests/deploy/metric_names.txt.
//
//   mw_catalogue check README.md metric_names.txt   exit 1 if either is stale
//   mw_catalogue write README.md metric_names.txt   bring both up to date
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include "migwatch/export/catalogue.h"

namespace {

constexpr std::string_view kBegin = "<!-- metrics-table -->\n";
constexpr std::string_view kEnd = "<!-- /metrics-table -->\n";

std::optional<std::string> Read(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The README with its table replaced by the catalogue's.
std::optional<std::string> WithTable(const std::string& readme) {
  const size_t begin = readme.find(kBegin);
  const size_t end = readme.find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return std::nullopt;
  return readme.substr(0, begin + kBegin.size()) + migwatch::MarkdownTable() + readme.substr(end);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || (std::string(argv[1]) != "check" && std::string(argv[1]) != "write")) {
    std::cerr << "usage: mw_catalogue check|write README.md metric_names.txt\n";
    return 2;
  }
  const bool write = std::string(argv[1]) == "write";
  const std::string readme_path = argv[2], names_path = argv[3];
  auto readme = Read(readme_path);
  if (!readme) {
    std::cerr << "mw_catalogue: cannot read " << readme_path << "\n";
    return 2;
  }
  auto wanted_readme = WithTable(*readme);
  if (!wanted_readme) {
    std::cerr << "mw_catalogue: " << readme_path << " has no " << kBegin.substr(0, kBegin.size() - 1) << " ... "
              << kEnd.substr(0, kEnd.size() - 1) << " section\n";
    return 2;
  }
  const std::string wanted_names = migwatch::NamesList();
  int stale = 0;
  for (const auto& [path, wanted] : {std::pair{readme_path, *wanted_readme}, std::pair{names_path, wanted_names}}) {
    if (Read(path).value_or("") == wanted) continue;
    if (write) {
      std::ofstream(path) << wanted;
      std::cout << "wrote " << path << "\n";
    } else {
      std::cerr << path << " does not match the metric catalogue (daemon/export/catalogue.cc); regenerate it with "
                << "cmake --build build --target metric-docs\n";
      ++stale;
    }
  }
  return stale ? 1 : 0;
}
