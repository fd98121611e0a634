#include "migwatch/kernel/proc/read_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace migwatch {
namespace {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::optional<std::string> ReadProcFile(const std::string& path) {
  const FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (file.get() < 0) return std::nullopt;

  std::string contents;
  char buffer[4096];
  for (;;) {
    const ssize_t got = ::read(file.get(), buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    if (got == 0) return contents;
    if (contents.size() + static_cast<std::size_t>(got) > kMaxProcFileBytes) return std::nullopt;
    contents.append(buffer, static_cast<std::size_t>(got));
  }
}

}  // namespace migwatch
