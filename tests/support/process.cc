#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "migwatch/workload/workload.h"

namespace migwatch::testing {
namespace {

// The test's environment with `changes` ("NAME=value") put first, in place
// of the variables of the same names.
std::vector<std::string> Environment(const std::vector<std::string>& changes) {
  std::vector<std::string> env = changes;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    bool changed = false;
    for (const auto& c : changes) changed |= entry.starts_with(c.substr(0, c.find('=') + 1));
    if (!changed) env.emplace_back(entry);
  }
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

// Where each thread of `pid` waits in the kernel, for failure messages.
std::string Stacks(pid_t pid) {
  std::string where;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream comm(task.path() / "comm"), stack(task.path() / "stack");
    std::string name, frames((std::istreambuf_iterator<char>(stack)), std::istreambuf_iterator<char>());
    std::getline(comm, name);
    where += task.path().filename().string() + " " + name + ":\n" + frames;
  }
  return where;
}

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const Options& options) : started_(Clock::now()) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  const bool piped = (!options.stdin_pipe || pipe2(in, O_CLOEXEC) == 0) && pipe2(out, O_CLOEXEC) == 0 &&
                     (options.stderr_to_test || pipe2(err, O_CLOEXEC) == 0);
  const int devnull = options.stdin_pipe ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (!piped || argv.empty()) {
    CloseAll({in[0], in[1], out[0], out[1], err[0], err[1], devnull});
    ended_as_ = Finished{};
    return;
  }
  // Everything the child needs is built before fork().
  const std::string file = options.path.empty() ? argv[0] : options.path;
  std::vector<std::string> arg_strings = argv, env_strings = Environment(options.env);
  std::vector<char*> args = Pointers(arg_strings), env = Pointers(env_strings);
  cpu_set_t launcher, here;
  const bool pinned = options.start_on_this_cpu && sched_getaffinity(0, sizeof(launcher), &launcher) == 0;
  if (pinned) {
    CPU_ZERO(&here);
    CPU_SET(sched_getcpu(), &here);
    sched_setaffinity(0, sizeof(here), &here);
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(options.stdin_pipe ? in[0] : devnull, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    if (err[1] >= 0) dup2(err[1], STDERR_FILENO);
    execvpe(file.c_str(), args.data(), env.data());
    _exit(127);
  }
  if (pinned) sched_setaffinity(0, sizeof(launcher), &launcher);
  CloseAll({in[0], out[1], err[1], devnull});
  if (pid_ < 0) {
    CloseAll({in[1], out[0], err[0]});
    ended_as_ = Finished{};
    return;
  }
  stdin_fd_ = in[1];
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  reader_ = std::thread([this, o = out[0], e = err[0]] { Read(o, e); });
}

Process::~Process() {
  if (!Reap(false)) {
    kill(pid_, SIGKILL);
    Reap(true);
  }
  CloseAll({stdin_fd_, wake_fd_});
}

void Process::Read(int out_fd, int err_fd) {
  pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  char buf[4096];
  bool reaped = false;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    // Once the command is reaped, all it wrote is in the pipes: read what is
    // there and stop, even if a process it started still holds them.
    const int ready = poll(fds, 3, reaped ? 0 : -1);
    if (ready == 0) break;
    if (ready < 0) continue;
    if (fds[2].revents) {
      reaped = true;
      fds[2].fd = -1;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      std::lock_guard lock(mutex_);
      if (n > 0) {
        (i == 0 ? out_ : err_).append(buf, n);
        output_.append(buf, n);
        arrivals_.emplace_back(Clock::now(), output_.size());
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        stdout_ended_ |= i == 0;
      }
      more_.notify_all();
    }
  }
  CloseAll({fds[0].fd, fds[1].fd});
  std::lock_guard lock(mutex_);
  stdout_ended_ = true;
  more_.notify_all();
}

bool Process::Reap(bool block) {
  if (ended_as_) return true;
  int status = 0;
  pid_t r;
  do r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  ended_ = Clock::now();
  Finished f;
  if (r == pid_) {
    f.exited = WIFEXITED(status);
    f.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    f.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }
  ended_as_ = f;
  if (reader_.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    reader_.join();
  }
  return true;
}

bool Process::Running() { return !Reap(false); }

void Process::Signal(int signal) {
  if (!ended_as_) kill(pid_, signal);
}

std::string Process::Stdout() const {
  std::lock_guard lock(mutex_);
  return out_;
}

std::string Process::Stderr() const {
  std::lock_guard lock(mutex_);
  return err_;
}

std::string Process::Output() const {
  std::lock_guard lock(mutex_);
  return output_;
}

std::optional<Clock::time_point> Process::WhenPrinted(const std::string& text) const {
  std::lock_guard lock(mutex_);
  const size_t at = output_.find(text);
  if (at == std::string::npos) return std::nullopt;
  for (const auto& [when, size] : arrivals_)
    if (size >= at + text.size()) return when;
  return std::nullopt;
}

namespace {

// Waits on `cv` until `done` holds or `deadline` passes; whether it holds.
template <typename Done>
bool WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
               Done done) {
  if (deadline == Clock::time_point::max()) {
    cv.wait(lock, done);
    return true;
  }
  return cv.wait_until(lock, deadline, done);
}

}  // namespace

bool Process::WaitForOutput(const std::string& text, double timeout_s) {
  std::unique_lock lock(mutex_);
  WaitUntil(more_, lock, After(Clock::now(), timeout_s),
            [&] { return stdout_ended_ || out_.find(text) != std::string::npos; });
  return out_.find(text) != std::string::npos;
}

std::optional<std::string> Process::NextLine(double timeout_s) {
  std::unique_lock lock(mutex_);
  size_t newline = std::string::npos;
  WaitUntil(more_, lock, After(Clock::now(), timeout_s), [&] {
    newline = out_.find('\n', lines_returned_);
    return stdout_ended_ || newline != std::string::npos;
  });
  if (newline == std::string::npos) return std::nullopt;
  std::string line = out_.substr(lines_returned_, newline - lines_returned_);
  lines_returned_ = newline + 1;
  return line;
}

void Process::Send(const std::string& line) {
  const std::string l = line + "\n";
  (void)!write(stdin_fd_, l.data(), l.size());
}

Finished Process::Finish(double timeout_s) {
  if (stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
  const auto deadline = After(Clock::now(), timeout_s);
  while (!Reap(false)) {
    if (Clock::now() >= deadline) {
      const std::string where = "\nstill running after " + std::to_string(timeout_s) + " s:\n" + Stacks(pid_);
      kill(pid_, SIGKILL);
      Reap(true);
      ended_as_->exited = false;
      ended_as_->exit_code = -1;
      std::lock_guard lock(mutex_);
      output_ += where;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return Result(started_);
}

Finished Process::Stop(int signal, double timeout_s) {
  if (Running()) {
    signalled_ = Clock::now();
    kill(pid_, signal);
  }
  Finish(timeout_s);
  return Result(signalled_);
}

Finished Process::Result(Clock::time_point since) const {
  Finished f = *ended_as_;
  if (since < ended_) f.seconds = std::chrono::duration<double>(ended_ - since).count();
  std::lock_guard lock(mutex_);
  f.out = out_;
  f.err = err_;
  f.output = output_;
  return f;
}

Finished RunToEnd(const std::vector<std::string>& argv, double timeout_s) {
  return Process(argv).Finish(timeout_s);
}

namespace {

Process::Options WorkloadOptions(const std::string& path) {
  // execve() may move the child to an idler CPU (sched_exec()) before it
  // takes its new name, and migwatch rightly counts that move under the
  // name it still has, the launcher's. A count compared with the kernel's
  // total for the process would then be one short: the child is started
  // on this thread's CPU alone, and mw_workload allows itself the
  // launcher's CPUs again from MW_WORKLOAD_CPUS once it runs under its own
  // name. Everything the child needs is built before fork().
  std::string cpus;
  for (int cpu : workload::AllowedCpus()) cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
  Process::Options options;
  options.path = path;
  options.env = {"MW_WORKLOAD_CPUS=" + cpus};
  options.stdin_pipe = true;
  options.stderr_to_test = true;
  options.start_on_this_cpu = true;
  return options;
}

}  // namespace

Subprocess::Subprocess(const std::string& path, const std::vector<std::string>& argv)
    : Process(argv, WorkloadOptions(path)) {}

std::optional<std::string> Subprocess::ValueOf(const std::string& key, double timeout_s) {
  const auto deadline = After(Clock::now(), timeout_s);
  const std::string prefix = key + "=";
  for (;;) {
    const double left = std::max(0.0, std::chrono::duration<double>(deadline - Clock::now()).count());
    auto line = NextLine(left);
    if (!line) return std::nullopt;
    if (line->rfind(prefix, 0) == 0) return line->substr(prefix.size());
  }
}

}  // namespace migwatch::testing
