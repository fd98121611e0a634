#include "support/daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <regex>

namespace migwatch::testing {
namespace {

Process::Options WithNotifySocket(const std::string& name) {
  Process::Options options;
  options.env = {"NOTIFY_SOCKET=@" + name};
  return options;
}

}  // namespace

Daemon::NotifySocket::NotifySocket() {
  static std::atomic<int> counter{0};
  // An abstract socket: no file to clean up, and reachable from a daemon
  // running as another user or in another mount namespace.
  name = "migwatch-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  bind(fd, reinterpret_cast<sockaddr*>(&address),
       static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
}

Daemon::NotifySocket::~NotifySocket() {
  if (fd >= 0) close(fd);
}

Daemon::Daemon(const std::vector<std::string>& argv) : process_(argv, WithNotifySocket(notify_.name)) {}

Daemon::~Daemon() = default;

bool Daemon::WaitReady(double timeout_s) {
  auto start = Clock::now();
  while (SecondsSince(start) < timeout_s) {
    pollfd p{notify_.fd, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char buf[1024];
      ssize_t n = recv(notify_.fd, buf, sizeof(buf), 0);
      // The log lines written before READY=1 may still be in the pipe.
      if (n > 0 && std::string(buf, n).find("READY=1") != std::string::npos) return port() > 0;
    }
    if (!process_.Running()) return false;
  }
  return false;
}

int Daemon::port() const {
  static const std::regex listening(R"(listening on [0-9.]*:([0-9]+)/)");
  // Logged before READY=1, but the pipe may not have been read yet.
  for (auto start = Clock::now(); SecondsSince(start) < 5; Pause(0.01)) {
    std::smatch m;
    std::string log = Log();
    if (std::regex_search(log, m, listening)) return std::stoi(m[1]);
  }
  return -1;
}

std::optional<double> Daemon::SecondsFromStopTo(const std::string& text) const {
  auto when = process_.WhenPrinted(text);
  if (!when) return std::nullopt;
  return std::chrono::duration<double>(*when - stop_signal_).count();
}

Finished Daemon::Stop(int signal, double timeout_s) {
  stop_signal_ = Clock::now();
  return process_.Stop(signal, timeout_s);
}

}  // namespace migwatch::testing
