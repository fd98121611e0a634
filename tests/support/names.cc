#include "support/names.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>

namespace migwatch::testing {

std::string UniqueName(const std::string& prefix) {
  std::random_device rd;
  return prefix + std::to_string(rd() % 100000);
}

NamedProgram::NamedProgram(const std::string& program, const std::string& name) {
  namespace fs = std::filesystem;
  static std::atomic<int> counter{0};
  directory_ = fs::temp_directory_path() /
               ("migwatch-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::create_directories(directory_);
  fs::permissions(directory_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  path_ = directory_ + "/" + name;
  fs::create_symlink(program, path_);
}

NamedProgram::~NamedProgram() {
  std::error_code ec;
  std::filesystem::remove_all(directory_, ec);
}

}  // namespace migwatch::testing
