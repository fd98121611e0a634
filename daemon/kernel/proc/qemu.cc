#include "migwatch/kernel/proc/qemu.h"

#include <algorithm>
#include <array>

#include "migwatch/kernel/proc/parse_util.h"

namespace migwatch {
namespace {

bool IsArchCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

// The option an argument names, without its one or two leading dashes, as
// QEMU's own parser treats "--name" like "-name". Empty for non-options.
std::string_view OptionName(std::string_view argument) {
  if (!argument.starts_with('-')) return {};
  argument.remove_prefix(1);
  if (argument.starts_with('-')) argument.remove_prefix(1);
  return argument;
}

// Takes one QemuOpts value off the front of `opts`: text up to the first
// single ',' (consumed), where ",," stands for a literal ','.
std::string TakeOptionValue(std::string_view& opts) {
  std::string value;
  while (!opts.empty()) {
    const std::size_t comma = opts.find(',');
    value.append(opts.substr(0, comma));
    if (comma == std::string_view::npos) {
      opts = {};
      break;
    }
    const bool escaped_comma = comma + 1 < opts.size() && opts[comma + 1] == ',';
    if (!escaped_comma) {
      opts.remove_prefix(comma + 1);
      break;
    }
    value.push_back(',');
    opts.remove_prefix(comma + 2);
  }
  return value;
}

// The guest name a -name argument sets, if it sets one. Follows QEMU's
// QemuOpts parsing (util/qemu-option.c): the first item may omit "guest=";
// later items without '=' are boolean flags, whose name ends at the next ','
// with no escaping; for repeated keys the last one wins.
std::optional<std::string> GuestNameFromNameOption(std::string_view opts) {
  std::optional<std::string> guest;
  bool first_item = true;
  while (!opts.empty()) {
    const std::size_t key_end = opts.find_first_of("=,");
    if (key_end != std::string_view::npos && opts[key_end] == '=') {
      const std::string_view key = opts.substr(0, key_end);
      opts.remove_prefix(key_end + 1);
      std::string value = TakeOptionValue(opts);
      if (key == "guest") guest = std::move(value);
    } else if (first_item) {
      guest = TakeOptionValue(opts);
    } else {
      opts.remove_prefix(key_end == std::string_view::npos ? opts.size() : key_end + 1);
    }
    first_item = false;
  }
  return guest;
}

// Lower-case form of a UUID in 8-4-4-4-12 layout, or "" if `text` is not one.
std::string NormalizeUuid(std::string_view text) {
  constexpr std::string_view kLayout = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  if (text.size() != kLayout.size()) return {};
  std::string uuid;
  uuid.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (kLayout[i] == '-') {
      if (c != '-') return {};
      uuid.push_back(c);
      continue;
    }
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!((lower >= '0' && lower <= '9') || (lower >= 'a' && lower <= 'f'))) return {};
    uuid.push_back(lower);
  }
  return uuid;
}

bool IsAllDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// True for "<stem>_<digits>".
bool IsNumberedName(std::string_view comm, std::string_view stem) {
  return comm.size() > stem.size() + 1 && comm.starts_with(stem) && comm[stem.size()] == '_' &&
         IsAllDigits(comm.substr(stem.size() + 1));
}

// `name` without a trailing "_<digits>" channel number.
std::string_view WithoutChannelNumber(std::string_view name) {
  const std::size_t underscore = name.rfind('_');
  if (underscore == std::string_view::npos || !IsAllDigits(name.substr(underscore + 1))) {
    return name;
  }
  return name.substr(0, underscore);
}

// "CPU <n>/<accelerator>": QEMU names a vCPU thread after the accelerator
// that runs it, KVM on a host with virtualisation, TCG under software
// emulation (one thread per vCPU, the default where the guest's memory
// model allows it).
std::optional<std::uint32_t> VcpuIndex(std::string_view comm) {
  constexpr std::string_view kPrefix = "CPU ";
  constexpr std::array<std::string_view, 2> kSuffixes = {"/KVM", "/TCG"};
  if (!comm.starts_with(kPrefix)) return std::nullopt;
  for (const std::string_view suffix : kSuffixes) {
    if (!comm.ends_with(suffix) || comm.size() < kPrefix.size() + suffix.size()) continue;
    return parse_util::ParseUnsigned<std::uint32_t>(
        comm.substr(kPrefix.size(), comm.size() - kPrefix.size() - suffix.size()));
  }
  return std::nullopt;
}

// Single-threaded TCG (-accel tcg,thread=single, or a guest whose memory
// model the host cannot honour) runs every vCPU in turn on this one thread.
constexpr std::string_view kAllVcpusThread = "ALL CPUs/TCG";

QemuThread MigrationThread(MigrationSide side, std::string_view label) {
  return QemuThread{
      .kind = QemuThreadKind::kMigration, .side = side, .migration_label = std::string(label)};
}

// A thread name, or the start of one, and the side of a migration it runs on.
struct SidedName {
  std::string_view name;
  MigrationSide side;
};

constexpr std::array kFixedNames = {
    // QEMU < 9.1
    SidedName{"live_migration", MigrationSide::kSource},
    SidedName{"return path", MigrationSide::kSource},
    SidedName{"bg_snapshot", MigrationSide::kSource},
    SidedName{"multifd-tls-han", MigrationSide::kSource},
    SidedName{"fault-default", MigrationSide::kDestination},
    SidedName{"fault-fast", MigrationSide::kDestination},
    SidedName{"COLO incoming", MigrationSide::kDestination},
    // QEMU >= 9.1: the one name without a side in it
    SidedName{"mig/snapshot", MigrationSide::kSource},
};

struct NumberedName {
  std::string_view stem;
  MigrationSide side;
  std::string_view label;
};

constexpr std::array kNumberedNames = {
    NumberedName{"multifdsend", MigrationSide::kSource, "multifdsend"},
    NumberedName{"multifdrecv", MigrationSide::kDestination, "multifdrecv"},
    // Receive threads on the destination, despite "src" in the name.
    NumberedName{"mig/src/recv", MigrationSide::kDestination, "mig/dst/recv"},
};

constexpr std::array kNamePrefixes = {
    SidedName{"postcopy/", MigrationSide::kDestination},
    SidedName{"mig/src/", MigrationSide::kSource},
    SidedName{"mig/dst/", MigrationSide::kDestination},
};

}  // namespace

bool IsQemuBinary(std::string_view argv0_or_comm) {
  const std::size_t slash = argv0_or_comm.rfind('/');
  const std::string_view base =
      slash == std::string_view::npos ? argv0_or_comm : argv0_or_comm.substr(slash + 1);
  if (base == "qemu-kvm") return true;
  constexpr std::string_view kSystemPrefix = "qemu-system-";
  if (!base.starts_with(kSystemPrefix)) return false;
  const std::string_view arch = base.substr(kSystemPrefix.size());
  return !arch.empty() && std::all_of(arch.begin(), arch.end(), IsArchCharacter);
}

std::optional<QemuVm> ParseQemuCommandLine(const std::vector<std::string>& argv) {
  if (argv.empty() || !IsQemuBinary(argv.front())) return std::nullopt;

  QemuVm vm;
  std::optional<std::string> guest;
  for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
    const std::string_view option = OptionName(argv[i]);
    if (option == "name") {
      if (auto name = GuestNameFromNameOption(argv[++i])) guest = std::move(name);
    } else if (option == "uuid") {
      vm.uuid = NormalizeUuid(argv[++i]);
    } else if (option == "incoming") {
      vm.incoming = true;
      ++i;
    }
  }
  vm.name = guest && !guest->empty() ? std::move(*guest) : vm.uuid;
  return vm;
}

std::string_view MigrationSideName(MigrationSide side) {
  return side == MigrationSide::kSource ? "source" : "destination";
}

QemuThread ClassifyQemuThread(std::string_view comm) {
  // "ALL CPUs/TCG" runs every vCPU: index 0.
  const auto index = comm == kAllVcpusThread ? std::optional<std::uint32_t>(0) : VcpuIndex(comm);
  if (index) {
    QemuThread vcpu;
    vcpu.kind = QemuThreadKind::kVcpu;
    vcpu.vcpu_index = *index;
    return vcpu;
  }
  for (const SidedName& fixed : kFixedNames) {
    if (comm == fixed.name) return MigrationThread(fixed.side, fixed.name);
  }
  for (const NumberedName& numbered : kNumberedNames) {
    if (IsNumberedName(comm, numbered.stem)) return MigrationThread(numbered.side, numbered.label);
  }
  for (const SidedName& prefix : kNamePrefixes) {
    if (comm.size() > prefix.name.size() && comm.starts_with(prefix.name)) {
      return MigrationThread(prefix.side, WithoutChannelNumber(comm));
    }
  }
  return QemuThread{};
}

}  // namespace migwatch
