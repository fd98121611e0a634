#!/usr/bin/env python3
"""Boot Debian kernels under QEMU and run a test script inside them.

migwatch must load and count on every kernel it supports, and the machines
that build it run a single kernel (one that even refuses fentry). This
harness downloads Debian's cloud kernels, packs busybox and the files under
test into an initramfs, boots it and hands back the exit status of a script
run inside the guest. See README.md in this directory for usage.
"""

import argparse
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import functools
import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_CACHE = "/var/cache/migwatch/vm"
# The package archive comes from the machine's own apt sources (see
# machine_mirror); MIGWATCH_VM_MIRROR overrides it.
APT_ETC = Path("/etc/apt")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
BUSYBOX = "/bin/busybox"
QEMU = "qemu-system-x86_64"

EXIT_MARKER = "MIGWATCH-GUEST-EXIT="
KERNEL_MARKER = "MIGWATCH-GUEST-KERNEL="
# Any failure that leaves no guest exit status to return: a kernel that
# cannot be fetched, an image that cannot be built, a guest that panics,
# hangs or never reports.
HARNESS_FAILURE = 125
# Booting under software emulation takes seconds; more so with several
# guests sharing two host cores. The host gives up this long after the guest
# script's own timeout should have ended it.
BOOT_ALLOWANCE_SECONDS = 120
LOG_TAIL_LINES = 40
# QEMU's own memory beside the guest's: translated code cache and devices.
QEMU_OVERHEAD_MIB = 512
# The firmware clears the screen and the serial line ends lines with CR.
TERMINAL_CONTROL = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|.)|\r")


@dataclasses.dataclass(frozen=True)
class KernelSource:
    suite: str
    # Full-match pattern: package names move with every ABI bump, and the
    # -dbg and -unsigned variants must not match.
    package_pattern: str


KERNELS = {
    "5.10": KernelSource("bullseye", r"linux-image-5\.10\..*-cloud-amd64"),
    "6.1": KernelSource("bookworm", r"linux-image-6\.1\..*-cloud-amd64"),
    "6.12": KernelSource("bookworm-backports", r"linux-image-6\.12\..*-cloud-amd64"),
}


class HarnessError(Exception):
    """A failure of the harness itself, reported as one clear message."""


@dataclasses.dataclass(frozen=True)
class Kernel:
    alias: str
    package: str
    version: str
    vmlinuz: Path


# ---------------------------------------------------------------- kernels


def cache_root() -> Path:
    return Path(os.environ.get("MIGWATCH_VM_CACHE", DEFAULT_CACHE))


def log(message: str) -> None:
    print(f"vm: {message}", file=sys.stderr, flush=True)


def run_command(command: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    except FileNotFoundError as error:
        raise HarnessError(f"{what}: {error}") from error
    if result.returncode != 0:
        raise HarnessError(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
            f"{result.stdout}{result.stderr}".rstrip()
        )
    return result


def suite_release(suite: str) -> str:
    """The release a suite belongs to: bookworm for bookworm-backports."""
    return suite.split("-", 1)[0].split("/", 1)[0]


# Suites that name a release of Debian's main archive: the releases the
# kernels come from, their neighbours and the archive's aliases. Other
# repositories a machine lists (a vendor's, a flat "./" one) name other suites.
DEBIAN_RELEASES = frozenset(
    {suite_release(source.suite) for source in KERNELS.values()}
    | {"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid"}
    | {"oldoldstable", "oldstable", "stable", "testing", "unstable"}
)


def is_main_archive_suite(suite: str) -> bool:
    """Whether a suite is a release of the main archive itself, as opposed
    to its -security or -updates companions (which may live elsewhere, and
    never carry every release's packages) or another repository's suite."""
    return suite in DEBIAN_RELEASES


def deb822_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of a deb822 .sources file as {lowercase field: value},
    continuation lines joined with spaces and comments dropped."""
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    field = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, field = {}, None
            continue
        if line[0] in " \t":
            if field is not None:
                fields[field] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        field = name.strip().lower()
        fields[field] = value.strip()
    if fields:
        stanzas.append(fields)
    return stanzas


def deb822_sources(text: str) -> list[tuple[str, str]]:
    """(URI, suite) of every enabled binary source in a deb822 file."""
    sources = []
    for stanza in deb822_stanzas(text):
        if stanza.get("enabled", "yes").lower() in ("no", "false", "0"):
            continue
        if "deb" not in stanza.get("types", "").split():
            continue
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                sources.append((uri, suite))
    return sources


def one_line_sources(text: str) -> list[tuple[str, str]]:
    """(URI, suite) of every binary source in a one-line sources.list:
    `deb [options] URI suite components`."""
    sources = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb") or not line[3:4].isspace():
            continue
        rest = line[3:].strip()
        if rest.startswith("["):
            closing = rest.find("]")
            if closing < 0:
                continue
            rest = rest[closing + 1:]
        words = rest.split()
        if len(words) >= 2:
            sources.append((words[0], words[1]))
    return sources


def apt_source_files(etc_apt: Path) -> list[Path]:
    """The files apt reads its sources from, in apt's own order."""
    files = [etc_apt / "sources.list"]
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(
            path for path in parts.iterdir() if path.suffix in (".list", ".sources") and path.is_file()
        )
    return files


def machine_mirror(suite: str, etc_apt: Path | None = None) -> str:
    """The package archive of the machine's own apt sources to fetch suite
    from: the URI of the first binary source for suite's release, or else of
    the first for any release of the main archive (one archive serves them
    all, backports included). -security and -updates entries never count."""
    etc_apt = etc_apt or APT_ETC
    release = suite_release(suite)
    files = apt_source_files(etc_apt)
    read = []
    same_release = []
    main_archive = []
    for path in files:
        try:
            text = path.read_text()
        except (FileNotFoundError, IsADirectoryError):
            continue
        except OSError as error:
            raise HarnessError(f"cannot read apt sources {path}: {error}") from error
        read.append(path)
        entries = deb822_sources(text) if path.suffix == ".sources" else one_line_sources(text)
        for uri, entry_suite in entries:
            if not is_main_archive_suite(entry_suite) or uri.startswith("cdrom:"):
                continue
            if entry_suite == release:
                same_release.append(uri)
            main_archive.append(uri)
    if same_release:
        return same_release[0]
    if main_archive:
        return main_archive[0]
    looked = ", ".join(str(path) for path in read) or f"none found under {etc_apt}"
    raise HarnessError(
        f"no package archive for {suite}: the apt sources read ({looked}) list no "
        "enabled `deb` entry for a release of the main archive; add one or set "
        "MIGWATCH_VM_MIRROR"
    )


class PrivateApt:
    """apt-get and apt-cache on a sources list, index and cache of their own,
    so that fetching kernels never touches the system's apt state."""

    def __init__(self, state_dir: Path, suite: str):
        mirror = os.environ.get("MIGWATCH_VM_MIRROR") or machine_mirror(suite)
        sources = state_dir / "sources.list"
        (state_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (state_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources.write_text(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {suite} main\n")
        self.options = [
            "-o", f"Dir::Etc::sourcelist={sources}",
            "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::lists={state_dir / 'lists'}",
            "-o", f"Dir::Cache={state_dir / 'cache'}",
        ]
        if os.geteuid() == 0:
            # Downloads land in our own directory, which the _apt user
            # cannot write; running them as root avoids a warning per file.
            self.options += ["-o", "APT::Sandbox::User=root"]

    def update(self) -> None:
        run_command(["apt-get", *self.options, "-q", "update"], "apt-get update")

    def newest(self, pattern: str) -> tuple[str, str] | None:
        """The (package, version) with the highest version among packages
        whose whole name matches pattern."""
        names = run_command(
            ["apt-cache", *self.options, "pkgnames", "linux-image-"], "apt-cache pkgnames"
        ).stdout.split()
        matching = sorted(name for name in names if re.fullmatch(pattern, name))
        if not matching:
            return None
        # madison lists real versions only: names that are merely provided
        # by another package have none.
        madison = run_command(
            ["apt-cache", *self.options, "madison", *matching], "apt-cache madison"
        ).stdout
        candidates = []
        for line in madison.splitlines():
            fields = [field.strip() for field in line.split("|")]
            if len(fields) >= 2 and fields[0] in matching:
                candidates.append((fields[0], fields[1]))
        if not candidates:
            return None
        return max(candidates, key=functools.cmp_to_key(compare_package_versions))

    def download(self, package: str, version: str, directory: Path) -> Path:
        run_command(
            ["apt-get", *self.options, "-q", "download", f"{package}={version}"],
            f"downloading {package} {version}",
            cwd=directory,
        )
        debs = list(directory.glob("*.deb"))
        if len(debs) != 1:
            raise HarnessError(f"apt-get download {package} left {len(debs)} .deb files")
        return debs[0]


def compare_package_versions(left: tuple[str, str], right: tuple[str, str]) -> int:
    """Debian version ordering, as dpkg itself defines it."""
    if left[1] == right[1]:
        return 0
    newer = subprocess.run(["dpkg", "--compare-versions", left[1], "gt", right[1]]).returncode == 0
    return 1 if newer else -1


@contextlib.contextmanager
def locked(path: Path):
    """Serialises fetches of one kernel between concurrent test processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def fetch_kernel(alias: str, refresh: bool = False) -> Kernel:
    """The cached kernel for alias; downloads the newest one when nothing is
    cached yet or when refresh asks to look for a newer one."""
    source = KERNELS[alias]
    alias_dir = cache_root() / "kernels" / alias
    current_file = alias_dir / "current.json"
    try:
        with locked(alias_dir / ".lock"):
            if not refresh and current_file.exists():
                kernel = read_current(alias, current_file)
                if kernel.vmlinuz.is_file():
                    return kernel
            return download_newest(alias, source, alias_dir, current_file)
    except PermissionError as error:
        raise HarnessError(
            f"kernel cache not writable ({error}); set MIGWATCH_VM_CACHE to a writable directory"
        ) from error


def read_current(alias: str, current_file: Path) -> Kernel:
    recorded = json.loads(current_file.read_text())
    return Kernel(alias, recorded["package"], recorded["version"], Path(recorded["vmlinuz"]))


def download_newest(alias: str, source: KernelSource, alias_dir: Path, current_file: Path) -> Kernel:
    apt = PrivateApt(cache_root() / "apt" / alias, source.suite)
    log(f"{alias}: looking for the newest {source.package_pattern} in {source.suite}")
    started = time.monotonic()
    apt.update()
    newest = apt.newest(source.package_pattern)
    if newest is None:
        raise HarnessError(
            f"kernel {alias}: no package matching {source.package_pattern} in {source.suite}"
        )
    package, version = newest
    version_dir = alias_dir / f"{package}_{version}"
    vmlinuz = next(version_dir.glob("vmlinuz-*"), None) if version_dir.is_dir() else None
    if vmlinuz is None:
        with tempfile.TemporaryDirectory(dir=alias_dir, prefix=".download-") as scratch:
            scratch_dir = Path(scratch)
            deb = apt.download(package, version, scratch_dir)
            run_command(["dpkg", "-x", str(deb), str(scratch_dir / "root")], f"unpacking {deb.name}")
            images = list((scratch_dir / "root" / "boot").glob("vmlinuz-*"))
            if len(images) != 1:
                raise HarnessError(f"{deb.name} holds {len(images)} boot/vmlinuz-* files, expected 1")
            staged = scratch_dir / "kernel"
            staged.mkdir()
            shutil.move(images[0], staged / images[0].name)
            # A rename, so a concurrent reader never sees a half-written kernel.
            staged.rename(version_dir)
            vmlinuz = version_dir / images[0].name
        log(f"{alias}: downloaded {package} {version} in {time.monotonic() - started:.1f} s")
    record = {"package": package, "version": version, "vmlinuz": str(vmlinuz)}
    temporary = current_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.rename(current_file)
    return Kernel(alias, package, version, vmlinuz)


# ---------------------------------------------------------------- image


INIT_SCRIPT = """#!/bin/sh
# PID 1 of a migwatch test guest (generated by tests/vm/vm.py): mounts the
# kernel interfaces migwatch needs, runs the guest script, reports its exit
# status on the console for the host to read, and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root

mount_or_warn() {{  # TYPE MOUNTPOINT
    mount -t "$1" "$1" "$2" || echo "init: cannot mount $1 on $2" >&2
}}
mount_or_warn proc /proc
mount_or_warn sysfs /sys
mount_or_warn devtmpfs /dev
mount_or_warn tmpfs /tmp
mount_or_warn tracefs /sys/kernel/tracing
mount_or_warn debugfs /sys/kernel/debug
mount_or_warn bpf /sys/fs/bpf
mount_or_warn cgroup2 /sys/fs/cgroup
# A daemon serving /metrics on 127.0.0.1 needs loopback up.
ip link set lo up
hostname migwatch-guest

echo "{kernel_marker}$(uname -r) cpus=$(nproc)"
cd /tmp
started=$(date +%s)
timeout -k 5 {timeout} /bin/sh /guest-script </dev/null
status=$?
if [ $(( $(date +%s) - started )) -ge {timeout} ]; then
    echo "init: guest script stopped after its {timeout} s timeout" >&2
fi
echo "{exit_marker}$status"
poweroff -f
"""

ETC_FILES = {
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "/etc/group": "root:x:0:\n",
    "/etc/hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
}


@dataclasses.dataclass
class Entry:
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


class Initramfs:
    """The files of a cpio "newc" archive, built in memory so that no step
    needs root (device nodes) or depends on the host's file owners."""

    def __init__(self):
        self.entries: dict[str, Entry] = {}

    def add_directory(self, guest_path: str) -> None:
        path = guest_path.rstrip("/")
        existing = self.entries.get(path)
        if existing is not None and not stat.S_ISDIR(existing.mode):
            raise HarnessError(f"guest path {path} is needed as a directory but is a file")
        if not path or existing is not None:
            return
        self.add_directory(os.path.dirname(path))
        self.entries[path] = Entry(stat.S_IFDIR | 0o755)

    def add(self, guest_path: str, entry: Entry) -> None:
        if not guest_path.startswith("/"):
            raise HarnessError(f"guest path {guest_path!r} is not absolute")
        guest_path = os.path.normpath(guest_path)
        self.add_directory(os.path.dirname(guest_path))
        existing = self.entries.get(guest_path)
        if existing is not None and stat.S_ISDIR(existing.mode):
            raise HarnessError(f"guest path {guest_path} is a directory")
        self.entries[guest_path] = entry

    def add_bytes(self, guest_path: str, data: bytes, mode: int = 0o644) -> None:
        self.add(guest_path, Entry(stat.S_IFREG | mode, data))

    def add_host_file(self, host_path: Path, guest_path: str) -> None:
        """Copies a file; an ELF binary brings its shared libraries and the
        dynamic loader along, at the paths the host resolved them to."""
        if not host_path.is_file():
            raise HarnessError(f"{host_path}: not a file")
        data = host_path.read_bytes()
        self.add_bytes(guest_path, data, stat.S_IMODE(host_path.stat().st_mode))
        if data.startswith(b"\x7fELF"):
            for library in shared_libraries(host_path):
                self.add_bytes(library, Path(library).read_bytes(), 0o755)

    def add_symlink(self, guest_path: str, target: str) -> None:
        self.add(guest_path, Entry(stat.S_IFLNK | 0o777, target.encode()))

    def add_char_device(self, guest_path: str, major: int, minor: int) -> None:
        self.add(guest_path, Entry(stat.S_IFCHR | 0o600, rdev=(major, minor)))

    def write(self, destination: Path) -> None:
        # Sorted, a directory precedes everything inside it, as the kernel's
        # unpacker requires.
        with gzip.GzipFile(destination, "wb", mtime=0) as archive:
            for inode, (path, entry) in enumerate(sorted(self.entries.items()), start=1):
                write_cpio_record(archive, inode, path.lstrip("/"), entry)
            write_cpio_record(archive, 0, "TRAILER!!!", Entry(0))


def write_cpio_record(archive, inode: int, name: str, entry: Entry) -> None:
    encoded_name = name.encode() + b"\0"
    fields = [
        inode, entry.mode, 0, 0, 1, 0, len(entry.data),
        0, 0, entry.rdev[0], entry.rdev[1], len(encoded_name), 0,
    ]
    header = b"070701" + b"".join(b"%08x" % field for field in fields)
    archive.write(pad4(header + encoded_name))
    archive.write(pad4(entry.data))


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def shared_libraries(binary: Path) -> list[str]:
    """Absolute paths of the libraries and loader a dynamic ELF file needs,
    as the host's loader resolves them; none for a static one."""
    result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if result.returncode != 0:
        if "not a dynamic executable" in result.stdout + result.stderr:
            return []
        raise HarnessError(f"ldd {binary} failed: {result.stdout}{result.stderr}".rstrip())
    libraries = []
    for line in result.stdout.splitlines():
        if "not found" in line:
            raise HarnessError(f"{binary}: shared library {line.split()[0]} not found")
        # "libbpf.so.1 => /lib/.../libbpf.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)";
        # the vDSO has no path and comes from the kernel.
        match = re.search(r"(/\S+) \(0x[0-9a-f]+\)$", line.strip())
        if match:
            libraries.append(match.group(1))
    return libraries


@dataclasses.dataclass(frozen=True)
class GuestFile:
    host: Path
    guest: str


def parse_guest_file(argument: str) -> GuestFile:
    """HOSTPATH[:GUESTPATH]; the default puts the file on the guest's PATH,
    and a GUESTPATH ending in / names the directory to put it in."""
    host, _, guest = argument.partition(":")
    host_path = Path(host)
    guest = guest or "/usr/local/bin/"
    if guest.endswith("/"):
        guest += host_path.name
    return GuestFile(host_path, guest)


def build_initramfs(guest_script: Path, files: list[GuestFile], timeout: int, destination: Path) -> None:
    image = Initramfs()
    for directory in ("/proc", "/sys", "/dev", "/tmp", "/root", "/run"):
        image.add_directory(directory)
    # The kernel opens the console for init before devtmpfs is mounted.
    image.add_char_device("/dev/console", 5, 1)
    image.add_host_file(Path(BUSYBOX), "/bin/busybox")
    applets = run_command([BUSYBOX, "--list-full"], "listing busybox applets").stdout.split()
    # The list names busybox itself, which must stay the binary.
    for applet in (f"/{path}" for path in applets if f"/{path}" != "/bin/busybox"):
        image.add_symlink(applet, "/bin/busybox")
    for path, content in ETC_FILES.items():
        image.add_bytes(path, content.encode())
    image.add_bytes(
        "/init",
        INIT_SCRIPT.format(timeout=timeout, exit_marker=EXIT_MARKER, kernel_marker=KERNEL_MARKER).encode(),
        0o755,
    )
    if not guest_script.is_file():
        raise HarnessError(f"guest script {guest_script}: not a file")
    image.add_bytes("/guest-script", guest_script.read_bytes(), 0o755)
    # Caller's files last: they may replace an applet link.
    for guest_file in files:
        image.add_host_file(guest_file.host, guest_file.guest)
    image.write(destination)


# ---------------------------------------------------------------- boot


@dataclasses.dataclass
class BootResult:
    status: int | None  # the guest script's exit status; None if it never reported
    kernel_release: str
    seconds: float
    log_path: Path
    timed_out: bool


KERNEL_PANIC = "Kernel panic - not syncing"
# A vCPU stuck in the guest kernel for over 20 s: under emulation it does not
# recover (seen: 6.1, a CPU stuck for 387 s while programs were attached).
SOFT_LOCKUP = "watchdog: BUG: soft lockup"
# More boots for a guest kernel that fails before the guest script starts
# (before it prints KERNEL_MARKER): nothing of migwatch has run yet.
BOOT_RETRIES_BEFORE_SCRIPT = 2


def boot(kernel: Kernel, initrd: Path, smp: int, memory_mib: int, guest_timeout: int,
         append: str, log_path: Path, echo, maxcpus: int | None = None,
         numa_nodes: int | None = None, one_host_thread: bool = False) -> BootResult:
    """Boots the guest; boots it once more if its kernel panicked.

    QEMU 7.2's software emulation still crashes a guest kernel now and then
    (seen: an int3 oops while the kernel patches its own text as a tracepoint
    is enabled, on 6.12) or leaves a vCPU stuck (a soft lockup, on 6.1), each
    in about one boot in eight of the matrix, or stops the guest without a
    word (seen: 6.1, silent for 220 s after the script's first lines, in 1 of
    40 boots of vm_scale), which the host's timeout tells: the guest
    script's own timeout would otherwise have ended it. That says nothing of
    the guest script, so it gets one more boot; the failure is printed, its
    log kept, and a second one fails as before. A kernel that fails before
    the guest script has started (seen: the int3 oops on 6.12, twice in a
    row at 9 s into boot) gets up to BOOT_RETRIES_BEFORE_SCRIPT more boots:
    nothing of migwatch, nor of the test, has run in it.

    maxcpus, when given, is the number of possible CPUs (smp of them online):
    the kernel sizes per-CPU data, BPF's per-CPU maps included, by it.
    numa_nodes, when given, splits the CPUs and the memory evenly over that
    many NUMA nodes (numa_arguments). one_host_thread emulates every vCPU in
    one host thread (boot_once)."""
    before_script_left, after_script_left = BOOT_RETRIES_BEFORE_SCRIPT, 1
    failures = 0
    while True:
        result = boot_once(kernel, initrd, smp, memory_mib, guest_timeout, append, log_path, echo, maxcpus,
                           numa_nodes, one_host_thread)
        text = log_path.read_text(errors="replace")
        if result.status is not None or not (KERNEL_PANIC in text or SOFT_LOCKUP in text or result.timed_out):
            return result
        script_started = KERNEL_MARKER in text
        if script_started and after_script_left:
            after_script_left -= 1
        elif not script_started and before_script_left:
            before_script_left -= 1
        else:
            return result
        # The retry writes the log its readers expect; the failed boot's stays.
        failures += 1
        suffix = ".panicked" if failures == 1 else f".panicked{failures}"
        panicked_log = log_path.with_name(log_path.stem + suffix + log_path.suffix)
        log_path.rename(panicked_log)
        what = ("panicked" if KERNEL_PANIC in text else "locked up" if SOFT_LOCKUP in text
                else "stopped (its script's own timeout never ended it)")
        when = "after" if script_started else "before"
        log(f"{kernel.alias}: the guest kernel {what} under emulation {when} the guest script started "
            f"(log: {panicked_log}); booting it once more")


def numa_arguments(nodes: int, cpus: int, memory_mib: int) -> list[str]:
    """QEMU options for `nodes` NUMA nodes, each with a contiguous block of
    the `cpus` (possible) CPUs and an equal share of the memory. QEMU's
    default distances apply: 10 within a node, 20 between nodes."""
    if cpus % nodes or memory_mib % nodes:
        raise HarnessError(f"{nodes} NUMA nodes: {cpus} CPUs and {memory_mib} MiB must divide evenly")
    per_node_cpus, per_node_mib = cpus // nodes, memory_mib // nodes
    arguments = []
    for node in range(nodes):
        first = node * per_node_cpus
        arguments += ["-object", f"memory-backend-ram,id=mem{node},size={per_node_mib}M",
                      "-numa", f"node,nodeid={node},cpus={first}-{first + per_node_cpus - 1},memdev=mem{node}"]
    return arguments


def boot_once(kernel: Kernel, initrd: Path, smp: int, memory_mib: int, guest_timeout: int,
              append: str, log_path: Path, echo, maxcpus: int | None = None,
              numa_nodes: int | None = None, one_host_thread: bool = False) -> BootResult:
    # Software emulation even where /dev/kvm exists: on the nested build
    # machines KVM opens but stops the guest with "emulation failure".
    # Without CMPXCHG16B: QEMU 7.2's emulation of it corrupted memory in about
    # half of the 6.12 boots (SLUB uses it on every allocation; random oopses
    # and double faults in early boot); with it hidden, 20 of 20 boots passed.
    # one_host_thread: all vCPUs take turns in one host thread instead of a
    # thread each. Slower, but the kernel patching its own text (every
    # fentry and tracepoint attach) is then seen by every vCPU at once: the
    # faults above came while programs were attached.
    command = [
        QEMU, "-accel", "tcg,thread=single" if one_host_thread else "tcg", "-cpu", "qemu64,-cx16",
        "-m", str(memory_mib), "-smp", f"{smp},maxcpus={maxcpus}" if maxcpus else str(smp),
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd),
        "-append", f"console=ttyS0 quiet panic=-1 {append}".strip(),
        "-nographic", "-no-reboot", "-nic", "none",
    ]
    if numa_nodes:
        command += numa_arguments(numa_nodes, maxcpus or smp, memory_mib)
    host_timeout = guest_timeout + BOOT_ALLOWANCE_SECONDS
    status = None
    kernel_release = "?"
    started = time.monotonic()
    try:
        # No stdin: QEMU would otherwise put an interactive terminal in raw mode.
        qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError as error:
        raise HarnessError(f"{QEMU} not found: install qemu-system-x86") from error
    expired = threading.Event()

    def expire():
        expired.set()
        qemu.kill()

    watchdog = threading.Timer(host_timeout, expire)
    watchdog.start()
    try:
        with open(log_path, "w") as log_file:
            for raw_line in qemu.stdout:
                line = TERMINAL_CONTROL.sub("", raw_line.decode(errors="replace").rstrip("\r\n"))
                log_file.write(line + "\n")
                log_file.flush()
                echo(line)
                if (match := re.search(re.escape(EXIT_MARKER) + r"(\d+)\b", line)):
                    status = int(match.group(1))
                elif SOFT_LOCKUP in line:
                    qemu.kill()  # it will not come back: stop the guest now
                    break
                elif (match := re.search(re.escape(KERNEL_MARKER) + r"(\S+)", line)):
                    kernel_release = match.group(1)
        qemu.wait()
    finally:
        watchdog.cancel()
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    return BootResult(status, kernel_release, time.monotonic() - started, log_path,
                      timed_out=expired.is_set())


def prefixed_echoes():
    """For guests booted side by side: prefixed_echo(alias) gives the echo
    that prints one guest's console lines as "[alias] line", whole lines
    only, whichever guest prints."""
    output_lock = threading.Lock()

    def prefixed_echo(alias):
        def echo(line):
            with output_lock:
                print(f"[{alias}] {line}", flush=True)
        return echo
    return prefixed_echo


def report_missing_status(alias: str, result: BootResult) -> None:
    reason = f"no answer within {result.seconds:.0f} s" if result.timed_out else "QEMU exited"
    lines = result.log_path.read_text(errors="replace").splitlines()
    print(
        f"vm: {alias}: the guest never reported an exit status ({reason}); "
        f"last {LOG_TAIL_LINES} lines of {result.log_path}:",
        file=sys.stderr,
    )
    for line in lines[-LOG_TAIL_LINES:]:
        print(f"    {line}", file=sys.stderr)
    sys.stderr.flush()


# ---------------------------------------------------------------- commands


@contextlib.contextmanager
def work_directory(requested: str | None):
    """The caller's directory, kept; or a temporary one, removed unless a
    guest failed, so its logs stay available for a look."""
    if requested:
        path = Path(requested)
        path.mkdir(parents=True, exist_ok=True)
        yield path, lambda: None
        return
    path = Path(tempfile.mkdtemp(prefix="migwatch-vm-"))
    keep = []
    try:
        yield path, lambda: keep.append(True)
    finally:
        if keep:
            log(f"logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def command_fetch(arguments) -> int:
    kernel = fetch_kernel(arguments.alias, refresh=arguments.refresh)
    print(kernel.vmlinuz)
    return 0


def command_run(arguments) -> int:
    kernel = fetch_kernel(arguments.alias)
    with work_directory(arguments.work_dir) as (work_dir, keep):
        initrd = work_dir / "initrd.img"
        build_initramfs(arguments.guest_script, arguments.file, arguments.timeout, initrd)
        possible = f" of {arguments.maxcpus} possible" if arguments.maxcpus else ""
        log(f"{kernel.alias}: booting {kernel.package} {kernel.version} with {arguments.smp} CPUs{possible}")
        result = boot(kernel, initrd, arguments.smp, arguments.memory, arguments.timeout,
                      arguments.append, work_dir / f"{kernel.alias}.log",
                      lambda line: print(line, flush=True), arguments.maxcpus, arguments.numa,
                      one_host_thread=arguments.one_host_thread)
        if result.status is None:
            keep()
            report_missing_status(kernel.alias, result)
            return HARNESS_FAILURE
        if result.status != 0:
            keep()
        log(f"{kernel.alias}: guest exit status {result.status} after {result.seconds:.1f} s")
        return result.status


def command_matrix(arguments) -> int:
    aliases = arguments.kernel or list(KERNELS)
    # Every kernel first: a missing one fails the run before any boot.
    kernels = [fetch_kernel(alias) for alias in aliases]
    jobs = arguments.jobs or default_jobs(len(kernels), arguments.memory)
    prefixed_echo = prefixed_echoes()

    with work_directory(arguments.work_dir) as (work_dir, keep):
        initrd = work_dir / "initrd.img"
        # The image holds no kernel modules, so every kernel boots the same one.
        build_initramfs(arguments.guest_script, arguments.file, arguments.timeout, initrd)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(boot, kernel, initrd, arguments.smp, arguments.memory, arguments.timeout,
                            arguments.append, work_dir / f"{kernel.alias}.log",
                            prefixed_echo(kernel.alias), arguments.maxcpus, arguments.numa,
                            one_host_thread=arguments.one_host_thread)
                for kernel in kernels
            ]
            results = [future.result() for future in futures]
        total = time.monotonic() - started

        rows = []
        failed = False
        for kernel, result in zip(kernels, results):
            if result.status is None:
                report_missing_status(kernel.alias, result)
                verdict = "FAIL (timeout)" if result.timed_out else "FAIL (no exit status)"
            else:
                verdict = "pass" if result.status == 0 else f"FAIL (exit {result.status})"
            failed |= verdict != "pass"
            rows.append((kernel.alias, result.kernel_release, kernel.version, verdict,
                         f"{result.seconds:.1f}"))
        if failed:
            keep()
        print_table(("alias", "kernel", "package version", "result", "seconds"), rows)
        print(f"{len(kernels)} kernels, {jobs} at a time, {total:.1f} s wall time", flush=True)
        return 1 if failed else 0


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def default_jobs(guest_count: int, memory_mib: int) -> int:
    """All guests at once while the host has the memory for them.

    Booting is mostly waiting on emulated timers, so on 2 cores three guests
    side by side took 12-14 s where one after another took 27-31 s. Each
    QEMU resides at about 250 MiB after a smoke boot; allowing the full guest
    memory plus QEMU's own keeps a busy guest from pushing the host to swap.
    """
    with open("/proc/meminfo") as meminfo:
        available_kib = next(int(line.split()[1]) for line in meminfo
                             if line.startswith("MemAvailable:"))
    fitting = available_kib // 1024 // (memory_mib + QEMU_OVERHEAD_MIB)
    return max(1, min(guest_count, fitting))


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vm.py", description=__doc__.splitlines()[0],
        epilog=f"Kernels: {', '.join(KERNELS)}. Downloads are cached in "
               f"$MIGWATCH_VM_CACHE (default {DEFAULT_CACHE}).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fetch = commands.add_parser("fetch", help="download a kernel (once) and print its vmlinuz path")
    fetch.add_argument("alias", choices=list(KERNELS))
    fetch.add_argument("--refresh", action="store_true",
                       help="look for a newer package even when one is cached")
    fetch.set_defaults(handler=command_fetch)

    def add_guest_options(subparser):
        subparser.add_argument("--guest-script", type=Path, required=True, metavar="FILE",
                               help="shell script run by busybox sh inside the guest")
        subparser.add_argument("--file", type=parse_guest_file, action="append", default=[],
                               metavar="HOSTPATH[:GUESTPATH]",
                               help="copy into the guest (default GUESTPATH /usr/local/bin/NAME); "
                                    "ELF files bring their shared libraries; repeatable")
        subparser.add_argument("--smp", type=positive_int, default=4, metavar="N", help="guest CPUs (default 4)")
        subparser.add_argument("--maxcpus", type=positive_int, metavar="N",
                               help="possible CPUs, --smp of them online (default: as many as "
                                    "--smp; QEMU's pc machine allows at most 255)")
        subparser.add_argument("--numa", type=positive_int, metavar="NODES",
                               help="NUMA nodes, the CPUs and the memory split evenly over them "
                                    "(default: none declared, one node)")
        subparser.add_argument("--memory", type=positive_int, default=1024, metavar="MIB",
                               help="guest memory in MiB (default 1024)")
        subparser.add_argument("--timeout", type=positive_int, default=300, metavar="SECONDS",
                               help="limit for the guest script (default 300); the host waits "
                                    f"{BOOT_ALLOWANCE_SECONDS} s more for the boot")
        subparser.add_argument("--append", default="", metavar="ARGS",
                               help="extra kernel command line arguments")
        subparser.add_argument("--one-host-thread", action="store_true",
                               help="emulate the vCPUs in one host thread (QEMU -accel "
                                    "tcg,thread=single): slower, but they take turns instead of "
                                    "competing for the host's CPUs")
        subparser.add_argument("--work-dir", metavar="DIR",
                               help="where the image and serial logs go (default: a temporary "
                                    "directory, kept only if a guest failed)")

    run = commands.add_parser("run", help="boot one kernel and return the guest script's exit status")
    run.add_argument("alias", choices=list(KERNELS))
    add_guest_options(run)
    run.set_defaults(handler=command_run)

    matrix = commands.add_parser("matrix", help="run the guest script on every kernel")
    add_guest_options(matrix)
    matrix.add_argument("--kernel", action="append", choices=list(KERNELS), metavar="ALIAS",
                        help="limit to these kernels (repeatable; default: all)")
    matrix.add_argument("--jobs", type=positive_int, metavar="N",
                        help="guests booted at the same time (default: all that fit in "
                             "the host's available memory)")
    matrix.set_defaults(handler=command_matrix)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    try:
        return arguments.handler(arguments)
    except HarnessError as error:
        print(f"vm: error: {error}", file=sys.stderr, flush=True)
        return HARNESS_FAILURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
