#include "subprocess.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "migwatch/workload/workload.h"

namespace migwatch::testing {

Subprocess::Subprocess(const std::string& path, const std::vector<std::string>& argv) {
  int in[2], out[2];
  if (pipe(in) || pipe(out)) return;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // execve() may move the child to an idler CPU (sched_exec()) before it
  // takes its new name, and migwatch rightly counts that move under the
  // name it still has, the launcher's. A count compared with the kernel's
  // total for the process would then be one short: the child is started
  // on this thread's CPU alone, and mw_workload allows itself the
  // launcher's CPUs again from MW_WORKLOAD_CPUS once it runs under its own
  // name. Everything the child needs is built before fork().
  std::string cpus;
  for (int cpu : workload::AllowedCpus()) cpus += (cpus.empty() ? "" : ",") + std::to_string(cpu);
  std::vector<std::string> env_strings = {"MW_WORKLOAD_CPUS=" + cpus};
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "MW_WORKLOAD_CPUS=", 17) != 0) env_strings.emplace_back(*e);
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  cpu_set_t launcher, here;
  const bool pinned = sched_getaffinity(0, sizeof(launcher), &launcher) == 0;
  if (pinned) {
    CPU_ZERO(&here);
    CPU_SET(sched_getcpu(), &here);
    sched_setaffinity(0, sizeof(here), &here);
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
    execve(path.c_str(), args.data(), env.data());
    _exit(127);
  }
  if (pinned) sched_setaffinity(0, sizeof(launcher), &launcher);
  close(in[0]);
  close(out[1]);
  in_ = in[1];
  out_ = out[0];
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait();
  }
  if (out_ >= 0) close(out_);
}

std::optional<std::string> Subprocess::ValueOf(const std::string& key, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  const std::string prefix = key + "=";
  for (;;) {
    size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    struct pollfd p = {out_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(out_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, n);
  }
}

void Subprocess::Send(const std::string& line) {
  std::string l = line + "\n";
  (void)!write(in_, l.data(), l.size());
}

int Subprocess::Wait() {
  if (in_ >= 0) {
    close(in_);
    in_ = -1;
  }
  if (pid_ <= 0) return -1;
  int status = 0;
  pid_t r = waitpid(pid_, &status, 0);
  pid_ = -1;
  return r > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace migwatch::testing
