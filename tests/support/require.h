// MIGWATCH_REQUIRE_BPF(): the guard of every test that loads BPF programs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

/// These tests need root (CAP_BPF, CAP_PERFMON). Without it they fail and
/// say why, unless MIGWATCH_ALLOW_SKIP=1 explicitly allows skipping.
#define MIGWATCH_REQUIRE_BPF()                                                                      \
  do {                                                                                              \
    if (geteuid() != 0) {                                                                           \
      const char* allow = std::getenv("MIGWATCH_ALLOW_SKIP");                                       \
      if (allow && std::string(allow) == "1") GTEST_SKIP() << "needs root to load BPF programs";    \
      FAIL() << "needs root to load BPF programs (set MIGWATCH_ALLOW_SKIP=1 to skip explicitly)";   \
    }                                                                                               \
  } while (0)
