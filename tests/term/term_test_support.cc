#include "term_test_support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "migwatch/kernel/proc/sched.h"

namespace migwatch::testing {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempDir() {
  char path[] = "/tmp/migwatch-term-XXXXXX";
  if (!mkdtemp(path)) {
    ADD_FAILURE() << "cannot create a directory under /tmp: " << std::strerror(errno);
    return "/nonexistent";
  }
  return path;
}

}  // namespace

void Pause(double seconds) { std::this_thread::sleep_for(std::chrono::duration<double>(seconds)); }

Background::Background(const std::vector<std::string>& argv)
    : dir_(TempDir()), stdout_path_(dir_ + "/stdout"), stderr_path_(dir_ + "/stderr") {
  pid_ = fork();
  if (pid_ == 0) {
    int out = open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Background::~Background() {
  if (pid_ > 0 && !Ended()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  for (const auto& path : {stdout_path_, stderr_path_, dir_}) std::filesystem::remove(path, ec);
}

std::string Background::Stdout() const { return ReadWhole(stdout_path_); }
std::string Background::Stderr() const { return ReadWhole(stderr_path_); }

bool Background::Ended() {
  if (pid_ <= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  pid_ = -1;
  return true;
}

bool Background::WaitForOutput(const std::string& text, double timeout_s) {
  for (double waited = 0;; waited += 0.05) {
    if (Stdout().find(text) != std::string::npos) return true;
    if (Ended()) return Stdout().find(text) != std::string::npos;
    if (waited >= timeout_s) return false;
    Pause(0.05);
  }
}

void Background::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int Background::Wait(double timeout_s) {
  for (double waited = 0; !Ended(); waited += 0.05) {
    if (waited >= timeout_s) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    Pause(0.05);
  }
  return status_;
}

Finished RunToEnd(const std::vector<std::string>& argv, double timeout_s) {
  Background command(argv);
  const int status = command.Wait(timeout_s);
  return {status, command.Stdout(), command.Stderr()};
}

Tmux::Tmux(const std::string& shell_command, int width, int height) : socket_(UniqueName("migwatch-term-")) {
  if (access(TMUX_PATH, X_OK) != 0) {
    ADD_FAILURE() << "tmux not found (" << TMUX_PATH << "): deploy/install-build-deps.sh installs it";
    return;
  }
  Finished started = Run({"new-session", "-d", "-s", "term", "-x", std::to_string(width), "-y",
                          std::to_string(height), shell_command});
  EXPECT_EQ(started.status, 0) << "tmux new-session failed: " << started.err;
}

Tmux::~Tmux() { Run({"kill-server"}); }

Finished Tmux::Run(std::vector<std::string> args) const {
  args.insert(args.begin(), {TMUX_PATH, "-L", socket_});
  return RunToEnd(args, 30);
}

std::vector<std::string> Tmux::Capture() const { return Lines(Run({"capture-pane", "-p", "-t", "term"}).out); }

void Tmux::SendKeys(const std::string& keys) const { Run({"send-keys", "-t", "term", keys}); }

void Tmux::Resize(int width, int height) const {
  Finished r = Run({"resize-window", "-t", "term", "-x", std::to_string(width), "-y", std::to_string(height)});
  EXPECT_EQ(r.status, 0) << "tmux resize-window failed: " << r.err;
}

bool Tmux::Running() const { return Run({"has-session", "-t", "term"}).status == 0; }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string UniqueName(const std::string& prefix) {
  std::random_device rd;
  return prefix + std::to_string(rd() % 100000);
}

uint64_t ProcessNrMigrations(pid_t pid) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec))
    if (auto n = ReadNrMigrations(pid, std::stoi(entry.path().filename()))) total += *n;
  return total;
}

}  // namespace migwatch::testing
