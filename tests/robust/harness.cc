#include "harness.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "migwatch.skel.h"
#include "migwatch/kernel/proc/sched.h"
#include "migwatch/kernel/proc/status.h"

namespace migwatch::testing {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// fork + exec with stdout and stderr on one pipe; the child also gets `env`
// ("NAME=value") on top of the test's environment.
pid_t Spawn(const std::vector<std::string>& argv, int* output_fd, const std::vector<std::string>& env = {}) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    return -1;
  }
  *output_fd = out[0];
  return pid;
}

// Reaps `pid` if it has ended by `deadline`; fills `f` from its status.
bool WaitUntil(pid_t pid, Clock::time_point deadline, Finished* f) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      f->exited = WIFEXITED(status);
      f->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      f->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
      return true;
    }
    if (r < 0 || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) s.append(buf, n);
  return s;
}

}  // namespace

NamedWorkload::NamedWorkload(const std::string& name) {
  namespace fs = std::filesystem;
  static std::atomic<int> counter{0};
  directory_ = fs::temp_directory_path() /
               ("migwatch-robust-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
  fs::create_directories(directory_);
  fs::permissions(directory_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  path_ = directory_ + "/" + name;
  fs::create_symlink(kWorkload, path_);
}

NamedWorkload::~NamedWorkload() {
  std::error_code ec;
  std::filesystem::remove_all(directory_, ec);
}

Finished RunToEnd(const std::vector<std::string>& argv, double timeout_s) {
  Finished f;
  int fd = -1;
  auto start = Clock::now();
  pid_t pid = Spawn(argv, &fd);
  if (pid < 0) return f;
  std::string output;
  std::thread reader([&] { output = ReadAll(fd); });
  auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  if (!WaitUntil(pid, deadline, &f)) {
    kill(pid, SIGKILL);
    WaitUntil(pid, Clock::time_point::max(), &f);
    f.exited = false;
  }
  f.seconds = SecondsSince(start);
  reader.join();
  close(fd);
  f.output = std::move(output);
  return f;
}

Daemon::Daemon(const std::vector<std::string>& argv) {
  static std::atomic<int> counter{0};
  // An abstract socket: no file to clean up, and reachable from a daemon
  // running as another user or in another mount namespace.
  std::string name = "migwatch-robust-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  notify_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  bind(notify_fd_, reinterpret_cast<sockaddr*>(&address),
       static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
  pid_ = Spawn(argv, &output_fd_, {"NOTIFY_SOCKET=@" + name});
  if (pid_ > 0) reader_ = std::thread([this] { ReadOutput(); });
}

Daemon::~Daemon() {
  if (pid_ > 0 && !finished_) Stop(SIGKILL);
  if (reader_.joinable()) reader_.join();
  if (output_fd_ >= 0) close(output_fd_);
  if (notify_fd_ >= 0) close(notify_fd_);
}

void Daemon::ReadOutput() {
  char buf[4096];
  ssize_t n;
  while ((n = read(output_fd_, buf, sizeof(buf))) > 0) {
    std::lock_guard lock(mutex_);
    log_.append(buf, n);
    arrivals_.emplace_back(Clock::now(), log_.size());
  }
}

bool Daemon::WaitReady(double timeout_s) {
  auto start = Clock::now();
  while (SecondsSince(start) < timeout_s) {
    pollfd p{notify_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char buf[1024];
      ssize_t n = recv(notify_fd_, buf, sizeof(buf), 0);
      // The log lines written before READY=1 may still be in the pipe.
      if (n > 0 && std::string(buf, n).find("READY=1") != std::string::npos) return port() > 0;
    }
    Finished f;
    if (!finished_ && WaitUntil(pid_, Clock::now(), &f)) {
      finished_ = f;
      return false;
    }
    if (finished_) return false;
  }
  return false;
}

int Daemon::port() const {
  static const std::regex listening(R"(listening on [0-9.]*:([0-9]+)/)");
  // Logged before READY=1, but the pipe may not have been read yet.
  for (auto start = Clock::now(); SecondsSince(start) < 5;
       std::this_thread::sleep_for(std::chrono::milliseconds(10))) {
    std::smatch m;
    std::string log = Log();
    if (std::regex_search(log, m, listening)) return std::stoi(m[1]);
  }
  return -1;
}

std::string Daemon::Log() const {
  std::lock_guard lock(mutex_);
  return log_;
}

std::optional<double> Daemon::SecondsFromStopTo(const std::string& text) const {
  std::lock_guard lock(mutex_);
  size_t at = log_.find(text);
  if (at == std::string::npos) return std::nullopt;
  for (const auto& [when, size] : arrivals_)
    if (size > at) return std::chrono::duration<double>(when - stop_signal_).count();
  return std::nullopt;
}

Finished Daemon::Stop(int signal, double timeout_s) {
  if (!finished_) {
    Finished f;
    auto start = Clock::now();
    {
      std::lock_guard lock(mutex_);
      stop_signal_ = start;
    }
    kill(pid_, signal);
    if (!WaitUntil(pid_, start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)),
                   &f)) {
      // Where each thread waits, for the failure message.
      std::string where = "\nstill running after " + std::to_string(timeout_s) + " s:\n";
      std::error_code ec;
      for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
        std::ifstream comm(task.path() / "comm"), stack(task.path() / "stack");
        std::string name, frames((std::istreambuf_iterator<char>(stack)), std::istreambuf_iterator<char>());
        std::getline(comm, name);
        where += task.path().filename().string() + " " + name + ":\n" + frames;
      }
      {
        std::lock_guard lock(mutex_);
        log_ += where;
      }
      kill(pid_, SIGKILL);
      WaitUntil(pid_, Clock::time_point::max(), &f);
      f.exited = false;
    }
    f.seconds = SecondsSince(start);
    finished_ = f;
  }
  if (reader_.joinable()) reader_.join();
  Finished f = *finished_;
  f.output = Log();
  return f;
}

Response HttpGet(int port, const std::string& path, double timeout_s) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  Response r;
  if (!initialised) {
    r.error = "curl_global_init failed";
    return r;
  }
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  auto write = +[](char* data, size_t size, size_t n, void* body) {
    static_cast<std::string*>(body)->append(data, size * n);
    return size * n;
  };
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, write);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  auto start = Clock::now();
  CURLcode rc = curl_easy_perform(curl.get());
  r.seconds = SecondsSince(start);
  if (rc != CURLE_OK) {
    r.error = curl_easy_strerror(rc);
    return r;
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

namespace {

// "name{a=\"x\",b=\"y\"}" -> name and labels; nullopt if malformed.
std::optional<std::pair<std::string, std::map<std::string, std::string>>> SplitSeries(std::string_view series) {
  size_t brace = series.find('{');
  std::string name(series.substr(0, brace));
  static const std::regex metric_name("[a-zA-Z_:][a-zA-Z0-9_:]*");
  if (!std::regex_match(name, metric_name)) return std::nullopt;
  std::map<std::string, std::string> labels;
  if (brace == std::string_view::npos) return std::make_pair(name, labels);
  if (series.back() != '}') return std::nullopt;
  size_t i = brace + 1;
  const size_t end = series.size() - 1;
  while (i < end) {
    size_t eq = series.find('=', i);
    if (eq == std::string_view::npos || eq + 1 >= end || series[eq + 1] != '"') return std::nullopt;
    std::string label(series.substr(i, eq - i));
    std::string value;
    size_t j = eq + 2;
    for (; j < end && series[j] != '"'; ++j) {
      if (series[j] == '\\' && j + 1 < end) {
        char c = series[++j];
        value += c == 'n' ? '\n' : c;
      } else {
        value += series[j];
      }
    }
    if (j >= end) return std::nullopt;
    if (!labels.emplace(label, value).second) return std::nullopt;
    i = j + 1;
    if (i < end && series[i] == ',') ++i;
  }
  return std::make_pair(name, labels);
}

}  // namespace

std::optional<Exposition> ParseExposition(const std::string& body, std::string* error) {
  Exposition e;
  if (body.empty() || body.back() != '\n') {
    *error = "the body does not end with a newline (truncated?)";
    return std::nullopt;
  }
  std::istringstream in(body);
  std::string line;
  size_t number = 0;
  auto fail = [&](const std::string& why) {
    *error = "line " + std::to_string(number) + ": " + why + ": " + line.substr(0, 200);
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) return fail("empty line");
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, family, type;
      words >> hash >> keyword >> family >> type;
      if (keyword == "TYPE") {
        if (e.types.count(family)) return fail("family declared twice");
        e.families.push_back(family);
        e.types[family] = type;
      }
      continue;
    }
    size_t space = line.rfind(' ');
    if (space == std::string::npos) return fail("no value");
    std::string series = line.substr(0, space);
    const char* value_text = line.c_str() + space + 1;
    char* value_end = nullptr;
    double value = std::strtod(value_text, &value_end);
    if (value_end == value_text || *value_end != '\0') return fail("value is not a number");
    auto split = SplitSeries(series);
    if (!split) return fail("malformed name or labels");
    const std::string& name = split->first;
    bool declared = e.types.count(name) > 0;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string s(suffix);
      if (name.size() > s.size() && name.ends_with(s) && e.types.count(name.substr(0, name.size() - s.size())))
        declared = true;
    }
    if (!declared) return fail("sample of an undeclared family");
    if (!e.samples.emplace(series, value).second) return fail("series repeated");
  }
  return e;
}

double Sum(const Exposition& e, const std::string& family, const std::vector<std::string>& labels) {
  double sum = 0;
  for (const auto& [series, value] : e.samples) {
    auto split = SplitSeries(series);
    if (!split || split->first != family) continue;
    bool match = true;
    for (const auto& want : labels) {
      size_t eq = want.find('=');
      std::string name = want.substr(0, eq), wanted = want.substr(eq + 2, want.size() - eq - 3);
      auto it = split->second.find(name);
      match &= it != split->second.end() && it->second == wanted;
    }
    if (match) sum += value;
  }
  return sum;
}

std::set<std::string> LabelValues(const Exposition& e, const std::string& family, const std::string& label) {
  std::set<std::string> values;
  for (const auto& [series, value] : e.samples) {
    auto split = SplitSeries(series);
    if (!split || split->first != family) continue;
    if (auto it = split->second.find(label); it != split->second.end()) values.insert(it->second);
  }
  return values;
}

Exposition Scrape(int port) {
  Response r = HttpGet(port);
  EXPECT_EQ(r.status, 200) << r.error;
  std::string error;
  auto e = ParseExposition(r.body, &error);
  EXPECT_TRUE(e) << error;
  return e.value_or(Exposition{});
}

CountCheck CompareProcessCount(int port, pid_t pid, const std::string& name, int attempts) {
  CountCheck c;
  for (int attempt = 0; attempt < attempts && !c.exact; ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto before = ProcessNrMigrations(pid);
    Exposition e = Scrape(port);
    auto after = ProcessNrMigrations(pid);
    if (!before || !after) break;
    c.kernel = *after;
    c.migwatch = Sum(e, "migwatch_process_migrations_total", {"process=\"" + name + "\""});
    // Events the kernel did not run the migration program for are the only
    // shortfall allowed, and they are counted.
    c.missed = Sum(e, "migwatch_bpf_program_misses_total", {"program=\"sched_migrate_task_btf\""}) +
               Sum(e, "migwatch_bpf_program_misses_total", {"program=\"sched_migrate_task_raw\""});
    const double kernel = static_cast<double>(c.kernel);
    c.exact = *before == *after && c.migwatch <= kernel && kernel - c.migwatch <= c.missed;
  }
  return c;
}

std::string ProbeModes(const Exposition& e) {
  std::string modes;
  const std::string family = "migwatch_probe_attached{";
  for (const auto& [series, value] : e.samples) {
    if (series.rfind(family, 0) != 0) continue;
    modes += series.substr(family.size(), series.size() - family.size() - 1) + " " +
             std::to_string(static_cast<int>(value)) + "\n";
  }
  return modes;
}

std::optional<size_t> MapEntries(pid_t holder, const std::string& map_name) {
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(holder) + "/fdinfo", ec)) {
    std::ifstream in(fd.path());
    std::string key;
    uint32_t id = 0;
    while (in >> key)
      if (key == "map_id:" && in >> id) break;
    if (!id) continue;
    int map_fd = bpf_map_get_fd_by_id(id);
    if (map_fd < 0) continue;
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    std::optional<size_t> entries;
    if (bpf_obj_get_info_by_fd(map_fd, &info, &length) == 0 && map_name == info.name) {
      std::vector<char> a(info.key_size), b(info.key_size);
      size_t n = 0;
      for (void* previous = nullptr; bpf_map_get_next_key(map_fd, previous, b.data()) == 0; previous = a.data()) {
        std::swap(a, b);
        ++n;
      }
      entries = n;
    }
    close(map_fd);
    if (entries) return entries;
  }
  return std::nullopt;
}

uint64_t RssBytes(pid_t pid) {
  auto field = ReadStatusField(pid, "VmRSS");  // "1234 kB"
  return field ? std::stoull(*field) * 1024 : 0;
}

std::optional<uint64_t> ProcessNrMigrations(pid_t pid) {
  std::error_code ec;
  uint64_t sum = 0;
  bool any = false;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    if (auto n = ReadNrMigrations(pid, std::stoi(task.path().filename()))) {
      sum += *n;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  return sum;
}

namespace {

// Program names as the kernel keeps them (BPF_OBJ_NAME_LEN - 1 characters),
// from the very object the daemon embeds. Opening parses; nothing loads.
const std::set<std::string>& MigwatchProgramNames() {
  static const std::set<std::string> names = [] {
    std::set<std::string> result;
    migwatch_bpf* skel = migwatch_bpf__open();
    if (!skel) return result;
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj) {
      result.insert(std::string(bpf_program__name(prog)).substr(0, BPF_OBJ_NAME_LEN - 1));
    }
    migwatch_bpf__destroy(skel);
    return result;
  }();
  return names;
}

// Which processes hold which BPF program and link ids, from every
// /proc/PID/fdinfo (a link's fdinfo names its program too).
struct Holders {
  std::map<uint32_t, std::set<pid_t>> programs, links;
};
Holders ScanHolders() {
  Holders h;
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid_text = proc.path().filename();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(pid_text);
    std::error_code fd_ec;
    for (const auto& fd : std::filesystem::directory_iterator(proc.path() / "fdinfo", fd_ec)) {
      std::ifstream in(fd.path());
      std::string key;
      uint32_t id;
      while (in >> key) {
        if (key == "prog_id:" && in >> id) h.programs[id].insert(pid);
        if (key == "link_id:" && in >> id) h.links[id].insert(pid);
      }
    }
  }
  return h;
}

}  // namespace

std::vector<BpfObject> MigwatchBpfObjects() {
  std::vector<BpfObject> objects;
  std::map<uint32_t, std::string> programs;
  for (uint32_t id = 0; bpf_prog_get_next_id(id, &id) == 0;) {
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;  // freed meanwhile
    bpf_prog_info info{};
    uint32_t length = sizeof(info);
    bool ok = bpf_obj_get_info_by_fd(fd, &info, &length) == 0;
    close(fd);
    if (ok && MigwatchProgramNames().count(info.name)) programs[id] = info.name;
  }
  std::map<uint32_t, uint32_t> links;  // link id -> program id
  for (uint32_t id = 0; bpf_link_get_next_id(id, &id) == 0;) {
    int fd = bpf_link_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t length = sizeof(info);
    bool ok = bpf_obj_get_info_by_fd(fd, &info, &length) == 0;
    close(fd);
    if (ok && programs.count(info.prog_id)) links[id] = info.prog_id;
  }
  // After our own fds are closed: only other processes' remain.
  Holders holders = ScanHolders();
  for (const auto& [id, name] : programs) objects.push_back({"program", id, name, holders.programs[id]});
  for (const auto& [id, prog] : links) objects.push_back({"link", id, programs[prog], holders.links[id]});
  return objects;
}

std::vector<BpfObject> LeftBehind(const std::set<uint32_t>& known, double grace_s) {
  auto start = Clock::now();
  for (;;) {
    std::vector<BpfObject> orphans;
    for (auto& o : MigwatchBpfObjects())
      if (o.holders.empty() && !known.count(o.id)) orphans.push_back(std::move(o));
    if (orphans.empty() || SecondsSince(start) >= grace_s) return orphans;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::set<uint32_t> HeldBy(const std::vector<BpfObject>& objects, pid_t pid) {
  std::set<uint32_t> ids;
  for (const auto& o : objects)
    if (o.holders.count(pid)) ids.insert(o.id);
  return ids;
}

std::string Describe(const std::vector<BpfObject>& objects) {
  std::string s;
  for (const auto& o : objects) s += o.kind + " " + std::to_string(o.id) + " (" + o.name + "); ";
  return s.empty() ? "none" : s;
}

}  // namespace migwatch::testing
