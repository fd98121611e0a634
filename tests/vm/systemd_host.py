#!/usr/bin/env python3
"""The migwatch package on a systemd host: Debian 12 with systemd as PID 1.

Builds (once, cached) a Debian 12 root filesystem with mmdebstrap from the
mirror of the machine's own apt sources: minbase, systemd, apt, bpftool,
wget and the runtime dependencies of the package, so that the guest
installs the package offline. Boots it as a cpio initramfs (rdinit= systemd:
no kernel module, no disk) on Debian's cloud kernels under QEMU, with the
package, a copy of it at a higher version for the upgrade, mw_workload and
systemd_host_guest.sh, which a unit runs once the boot is done. The guest
script installs the package with apt and checks the service (Type=notify,
dynamic user, capabilities, probe modes against the same binary run as
root, an affinity storm against se.nr_migrations, the watchdog, restart,
upgrade and purge, BPF objects left behind); this harness reads its
`SYSHOST PASS|FAIL` lines off the serial console, prints a table and exits
0 only if every check passed on every kernel. See README.md here.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vm

SUITE = "bookworm"
VARIANT = "minbase"
# Beside the package's own dependencies: an init, the package manager the
# test installs with, bpftool (the kernel's list of programs and maps) and
# wget (scrapes).
BASE_PACKAGES = ("systemd", "systemd-sysv", "apt", "bpftool", "wget")
# Bumped whenever customise() changes what the cached image holds.
IMAGE_FORMAT = 1
GUEST_DIR = "/root/systest"
# Named without "migwatch": the purge check looks for any file so named.
TEST_UNIT = "systemd-host-check.service"
# The checks the guest script makes, in order; a missing one fails.
CHECKS = (
    "install", "active", "dynamic-user", "capabilities", "storm-count", "storm-reason",
    "affinity-changes", "migwatch-check", "restart", "stop-leaves-nothing", "probes",
    "root-run-leaves-nothing", "start-again", "watchdog", "watchdog-leaves-nothing",
    "upgrade", "purge", "purge-leaves-nothing",
)
RESULT = re.compile(r"SYSHOST (PASS|FAIL) ([a-z0-9-]+): (.*)")
INFO = re.compile(r"SYSHOST INFO (.*)")
# A root filesystem in RAM (about 250 MB unpacked) beside the initramfs
# itself until it is freed, and the daemon.
GUEST_MEMORY_MIB = 2048
GUEST_CPUS = 2
# Boot 35-100 s under emulation, the checks 2-8 minutes on a loaded 2-core
# machine (the watchdog alone waits WatchdogSec + RestartSec; one upgrade
# took 180 s with three guests beside other builds). The harness gives up
# on a guest this long after it booted, plus vm.BOOT_ALLOWANCE_SECONDS, and
# prints the console's last lines: within the suite's timeout, so that a
# guest that stops answering is reported, not killed unseen.
GUEST_TIMEOUT_SECONDS = 600
APPEND = "rdinit=/lib/systemd/systemd systemd.show_status=0 systemd.log_level=warning"

TEST_UNIT_TEXT = f"""[Unit]
Description=migwatch package checks on a systemd host (tests/vm/systemd_host.py)
After=multi-user.target

[Service]
Type=simple
ExecStart=/bin/sh {GUEST_DIR}/guest.sh
StandardInput=null
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
"""


def log(message: str) -> None:
    print(f"systemd_host: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- root filesystem


def package_dependencies(deb: Path) -> list[str]:
    """The packages a .deb depends on: the first of each alternative,
    without versions or architecture qualifiers."""
    depends = vm.run_command(["dpkg-deb", "-f", str(deb), "Depends"], f"reading {deb.name}").stdout
    names = []
    for clause in depends.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(:]", first, maxsplit=1)[0]
        if name:
            names.append(name)
    return names


def image_packages(deb: Path) -> list[str]:
    return sorted(set(BASE_PACKAGES) | set(package_dependencies(deb)))


def image_key(packages: list[str]) -> str:
    description = {"suite": SUITE, "variant": VARIANT, "packages": packages, "format": IMAGE_FORMAT}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


def customise(root: Path) -> None:
    """A guest that boots quietly to multi-user.target and reaches nothing."""
    (root / "etc/hostname").write_text("migwatch-systemd\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost migwatch-systemd\n::1 localhost\n")
    (root / "etc/fstab").write_text("# the root file system is the initramfs\n")
    # The guest has no network: no apt source either (the installs are of
    # local files, with their dependencies already in the image).
    (root / "etc/apt/sources.list").write_text("")
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    # Logins on the console would mix with the results; the timers would
    # start apt in the middle of the checks.
    for unit in ("serial-getty@ttyS0.service", "getty@tty1.service", "apt-daily.timer",
                 "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "fstrim.timer",
                 "e2scrub_all.timer", "systemd-tmpfiles-clean.timer"):
        link = units / unit
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to("/dev/null")


def build_rootfs(packages: list[str], destination: Path) -> None:
    mirror = os.environ.get("MIGWATCH_VM_MIRROR") or vm.machine_mirror(SUITE)
    scratch = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".build-"))
    try:
        root = scratch / "root"
        log(f"building the {SUITE} root file system ({VARIANT}, {len(packages)} packages requested)")
        vm.run_command(
            ["mmdebstrap", "--quiet", f"--variant={VARIANT}", "--mode=root", "--components=main",
             f"--include={','.join(packages)}", "--aptopt=Acquire::Languages \"none\"",
             # /bin -> /usr/bin links made by mmdebstrap itself rather than
             # by the usrmerge package, which would bring perl in.
             "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
             "--dpkgopt=force-unsafe-io",
             "--dpkgopt=path-exclude=/usr/share/{doc,man,locale,info}/*",
             "--dpkgopt=path-include=/usr/share/doc/*/copyright",
             SUITE, str(root), mirror],
            "mmdebstrap",
        )
        customise(root)
        image = scratch / "rootfs.cpio"
        # Uncompressed: the guest kernel unpacks it without decompressing
        # 70 MB under emulation. Owners and modes as in the tree.
        with open(image, "wb") as output:
            listing = subprocess.run(["find", ".", "-mindepth", "1", "-print0"], cwd=root,
                                     capture_output=True, check=True).stdout
            names = b"\0".join(sorted(listing.rstrip(b"\0").split(b"\0"))) + b"\0"
            subprocess.run(["cpio", "--null", "--create", "--format=newc", "--quiet"], cwd=root,
                           input=names, stdout=output, check=True)
        installed = vm.run_command(
            ["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-W", "-f", "${Package} ${Version}\\n"],
            "listing the image's packages").stdout
        (scratch / "installed.txt").write_text(installed)
        (scratch / "packages.json").write_text(json.dumps({"suite": SUITE, "variant": VARIANT,
                                                           "packages": packages}, indent=2) + "\n")
        shutil.rmtree(root)
        scratch.rename(destination)
        scratch = None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def rootfs_image(packages: list[str]) -> Path:
    """The cached image for this package list; built when missing."""
    directory = vm.cache_root() / "systemd-rootfs"
    key = image_key(packages)
    destination = directory / key
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with vm.locked(directory / f".{key}.lock"):
            if not (destination / "rootfs.cpio").is_file():
                started = time.monotonic()
                build_rootfs(packages, destination)
                log(f"root file system {key} built in {time.monotonic() - started:.1f} s")
    except PermissionError as error:
        raise vm.HarnessError(
            f"image cache not writable ({error}); set MIGWATCH_VM_CACHE to a writable directory"
        ) from error
    return destination / "rootfs.cpio"


# ---------------------------------------------------------------- the guest's files


def make_package(build_dir: Path, directory: Path) -> Path:
    """The package of a built tree. As in tests/deploy/install_package.sh:
    naming Ninja's generator packages the tree as built, without the
    Makefile generator's preinstall target (a full build) rebuilding
    binaries that tests running beside use."""
    config = build_dir / "CPackConfig.cmake"
    if not config.is_file():
        raise vm.HarnessError(f"{build_dir} has no CPackConfig.cmake: configure and build it first")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    vm.run_command(["cpack", "-G", "DEB", "--config", str(config), "-B", str(directory),
                    "-D", "CPACK_CMAKE_GENERATOR=Ninja"], "cpack")
    debs = list(directory.glob("migwatch_*.deb"))
    if len(debs) != 1:
        raise vm.HarnessError(f"cpack made {len(debs)} migwatch_*.deb files in {directory}")
    return debs[0]


def upgrade_package(deb: Path, directory: Path) -> Path:
    """The same package at a higher version: what an upgrade installs."""
    version = vm.run_command(["dpkg-deb", "-f", str(deb), "Version"], f"reading {deb.name}").stdout.strip()
    higher = f"{version}+upgrade1"
    tree = directory / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    vm.run_command(["dpkg-deb", "-R", str(deb), str(tree)], f"unpacking {deb.name}")
    control = tree / "DEBIAN/control"
    control.write_text(re.sub(r"(?m)^Version: .*$", f"Version: {higher}", control.read_text()))
    output = directory / f"migwatch_{higher}_amd64.deb"
    vm.run_command(["dpkg-deb", "--root-owner-group", "-Zxz", "-b", str(tree), str(output)],
                   "building the upgrade package")
    shutil.rmtree(tree)
    return output


def overlay(deb: Path, upgrade: Path, workload: Path, destination: Path) -> None:
    """A second cpio archive, unpacked over the cached root file system."""
    image = vm.Initramfs()
    here = Path(__file__).resolve().parent
    image.add_bytes(f"{GUEST_DIR}/guest.sh", (here / "systemd_host_guest.sh").read_bytes(), 0o755)
    image.add_bytes(f"{GUEST_DIR}/guest_helpers.sh", (here / "guest_helpers.sh").read_bytes())
    image.add_bytes(f"{GUEST_DIR}/install/{deb.name}", deb.read_bytes())
    image.add_bytes(f"{GUEST_DIR}/upgrade/{upgrade.name}", upgrade.read_bytes())
    # Its libraries are Debian 12's, as in the image: the binary alone.
    image.add_bytes("/usr/local/bin/mw_workload", workload.read_bytes(), 0o755)
    image.add_bytes(f"/etc/systemd/system/{TEST_UNIT}", TEST_UNIT_TEXT.encode())
    image.add_symlink(f"/etc/systemd/system/multi-user.target.wants/{TEST_UNIT}",
                      f"/etc/systemd/system/{TEST_UNIT}")
    image.write(destination)


# ---------------------------------------------------------------- judging


def judge(lines: list[str], status: int | None) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """{check: (PASS|FAIL|missing, detail)} and the INFO lines of one guest."""
    results: dict[str, tuple[str, str]] = {}
    infos = []
    for line in lines:
        if (match := RESULT.search(line)):
            verdict, name, detail = match.groups()
            # A check reported twice keeps its failure.
            if results.get(name, ("PASS",))[0] != "FAIL":
                results[name] = (verdict, detail)
        elif (match := INFO.search(line)):
            infos.append(match.group(1))
    for name in CHECKS:
        results.setdefault(name, ("missing", "no result line"))
    if status is None:
        results["guest"] = ("FAIL", "the guest never reported an exit status")
    elif status != 0 and all(verdict == "PASS" for verdict, _ in results.values()):
        results["guest"] = ("FAIL", f"guest script exit status {status}")
    return results, infos


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="systemd_host.py", description=__doc__.splitlines()[0])
    package = parser.add_mutually_exclusive_group(required=True)
    package.add_argument("--deb", type=Path, help="the migwatch package (cpack -G DEB)")
    package.add_argument("--build-dir", type=Path,
                         help="a configured and built tree to package with cpack (into WORK_DIR/package)")
    parser.add_argument("--workload", type=Path, required=True, help="mw_workload")
    parser.add_argument("--kernel", action="append", choices=list(vm.KERNELS), metavar="ALIAS",
                        help="kernels to boot (repeatable; default: all)")
    parser.add_argument("--jobs", type=vm.positive_int, metavar="N",
                        help="guests booted at the same time (default: all that fit in memory)")
    parser.add_argument("--one-host-thread", action="store_true",
                        help="emulate each guest's vCPUs in one host thread (QEMU -accel tcg,thread=single)")
    parser.add_argument("--work-dir", required=True, help="image, logs and results")
    parser.add_argument("--rootfs-only", action="store_true",
                        help="build (or find) the cached root file system and stop")
    arguments = parser.parse_args(argv)
    work_dir = Path(arguments.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        if shutil.which("mmdebstrap") is None:
            raise vm.HarnessError("mmdebstrap not found: install it (deploy/install-build-deps.sh)")
        deb = arguments.deb.resolve() if arguments.deb else make_package(arguments.build_dir, work_dir / "package")
        packages = image_packages(deb)
        rootfs_started = time.monotonic()
        rootfs = rootfs_image(packages)
        rootfs_seconds = time.monotonic() - rootfs_started
        log(f"root file system: {rootfs} ({rootfs.stat().st_size / 2**20:.0f} MiB, {rootfs_seconds:.1f} s)")
        if arguments.rootfs_only:
            print(rootfs)
            return 0
        aliases = arguments.kernel or list(vm.KERNELS)
        kernels = [vm.fetch_kernel(alias) for alias in aliases]
        upgrade = upgrade_package(deb, work_dir)
        extra = work_dir / "overlay.cpio.gz"
        overlay(deb, upgrade, arguments.workload, extra)
        initrd = work_dir / "initrd.img"
        # The kernel unpacks concatenated archives one after the other.
        with open(initrd, "wb") as output:
            for part in (rootfs, extra):
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, output, 1 << 20)
    except vm.HarnessError as error:
        print(f"systemd_host: error: {error}", file=sys.stderr, flush=True)
        return vm.HARNESS_FAILURE

    jobs = arguments.jobs or vm.default_jobs(len(kernels), GUEST_MEMORY_MIB)
    echo_for = vm.prefixed_echoes()

    boot_started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(vm.boot, kernel, initrd, GUEST_CPUS, GUEST_MEMORY_MIB, GUEST_TIMEOUT_SECONDS,
                        APPEND, work_dir / f"{kernel.alias}.log", echo_for(kernel.alias),
                        one_host_thread=arguments.one_host_thread)
            for kernel in kernels
        ]
        boots = [future.result() for future in futures]
    boot_seconds = time.monotonic() - boot_started

    failed = False
    rows = []
    summary = {"rootfs": str(rootfs), "rootfs_seconds": round(rootfs_seconds, 1),
               "packages": packages, "kernels": {}}
    for kernel, boot in zip(kernels, boots):
        lines = boot.log_path.read_text(errors="replace").splitlines()
        if boot.status is None:
            vm.report_missing_status(kernel.alias, boot)
        results, infos = judge(lines, boot.status)
        for name, (verdict, detail) in results.items():
            rows.append((kernel.alias, name, verdict, detail))
            failed |= verdict != "PASS"
        summary["kernels"][kernel.alias] = {
            "kernel": boot.kernel_release, "package": kernel.package, "version": kernel.version,
            "status": boot.status, "seconds": round(boot.seconds, 1),
            "results": {name: {"verdict": verdict, "detail": detail} for name, (verdict, detail) in results.items()},
            "info": infos,
        }
    (work_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print()
    for kernel, boot in zip(kernels, boots):
        print(f"{kernel.alias}: {boot.kernel_release} ({kernel.package} {kernel.version}), "
              f"{boot.seconds:.1f} s, guest exit {boot.status}")
        for info in summary["kernels"][kernel.alias]["info"]:
            print(f"    {info}")
    vm.print_table(("kernel", "check", "result", "detail"), rows)
    print(f"root file system {rootfs_seconds:.1f} s, {len(kernels)} guests ({jobs} at a time) "
          f"{boot_seconds:.1f} s, total {time.monotonic() - started:.1f} s; logs in {work_dir}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
