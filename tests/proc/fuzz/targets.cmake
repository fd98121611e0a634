# The libFuzzer targets: tests/proc/fuzz_<name>.cc, seeded from
# tests/proc/corpus/<name>/. Shared by tests/proc/CMakeLists.txt (one CTest
# test each) and tests/proc/fuzz/CMakeLists.txt (the clang build).
set(MIGWATCH_PROC_FUZZ_TARGETS stat status sched schedstat cmdline qemu_thread)
