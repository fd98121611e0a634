// Names for what a test starts: process names, and a program file under one.
#pragma once

#include <string>

namespace migwatch::testing {

/// A name no other test run uses, for comms, processes and VMs.
std::string UniqueName(const std::string& prefix);

/// A program under another file name (a symlink in a directory of its own),
/// so that a process started from it has that comm from its exec on (a
/// rename after the exec would leave the migrations made before it under the
/// old name). Anyone may run it.
class NamedProgram {
 public:
  /// `name`: at most 15 characters (the kernel's comm).
  NamedProgram(const std::string& program, const std::string& name);
  ~NamedProgram();
  NamedProgram(const NamedProgram&) = delete;
  NamedProgram& operator=(const NamedProgram&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string directory_, path_;
};

}  // namespace migwatch::testing
