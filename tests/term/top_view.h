// Reading the text of a `migwatch top` view (a tmux pane or batch output).
#pragma once

#include <string>
#include <vector>

namespace migwatch::testing {

/// The rows of the table whose header line starts with `header` (leading
/// blanks ignored), up to the next blank line. Empty if the table is absent
/// or shows "(none)".
std::vector<std::string> TableRows(const std::vector<std::string>& lines, const std::string& header);

/// Whether a table with this header is in view.
bool HasTable(const std::vector<std::string>& lines, const std::string& header);

/// The whitespace-separated fields of a line.
std::vector<std::string> Fields(const std::string& line);

/// CPU rows whose MIGRATION/N% is above zero.
int CpusWithStopperTime(const std::vector<std::string>& cpu_rows);

/// Batch output split into its reports (each starts with "migwatch top - ").
std::vector<std::vector<std::string>> Reports(const std::vector<std::string>& lines);

/// The lines joined, for failure messages.
std::string Join(const std::vector<std::string>& lines);

}  // namespace migwatch::testing
