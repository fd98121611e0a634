#include "top_view.h"

#include <cstdlib>
#include <sstream>

namespace migwatch::testing {
namespace {

std::string TrimLeft(const std::string& s) {
  const size_t start = s.find_first_not_of(' ');
  return start == std::string::npos ? "" : s.substr(start);
}

}  // namespace

std::vector<std::string> TableRows(const std::vector<std::string>& lines, const std::string& header) {
  std::vector<std::string> rows;
  size_t i = 0;
  while (i < lines.size() && TrimLeft(lines[i]).rfind(header, 0) != 0) ++i;
  for (++i; i < lines.size() && !TrimLeft(lines[i]).empty() && lines[i] != "(none)"; ++i) rows.push_back(lines[i]);
  return rows;
}

bool HasTable(const std::vector<std::string>& lines, const std::string& header) {
  for (const auto& l : lines)
    if (TrimLeft(l).rfind(header, 0) == 0) return true;
  return false;
}

std::vector<std::string> Fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string f; in >> f;) fields.push_back(f);
  return fields;
}

int CpusWithStopperTime(const std::vector<std::string>& cpu_rows) {
  int busy = 0;
  for (const auto& row : cpu_rows) {
    // CPU IN/s OUT/s MIGRATION/N% RUNS/s TOP-WORK
    const auto f = Fields(row);
    if (f.size() >= 4 && std::strtod(f[3].c_str(), nullptr) > 0) ++busy;
  }
  return busy;
}

std::vector<std::vector<std::string>> Reports(const std::vector<std::string>& lines) {
  std::vector<std::vector<std::string>> reports;
  for (const auto& l : lines) {
    if (l.rfind("migwatch top - ", 0) == 0) reports.emplace_back();
    if (!reports.empty()) reports.back().push_back(l);
  }
  return reports;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

}  // namespace migwatch::testing
