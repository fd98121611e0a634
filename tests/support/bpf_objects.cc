#include "support/bpf_objects.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "migwatch.skel.h"
#include "support/clock.h"

namespace migwatch::testing {

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
    Pause(0.1);
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

}  // namespace migwatch::testing
