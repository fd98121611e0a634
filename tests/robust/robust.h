// What the robustness tests share: the binaries under test, from the build,
// and the test support (tests/support) they use.
#pragma once

#include <string>

#include "support/bpf_objects.h"
#include "support/count_check.h"
#include "support/daemon.h"
#include "support/exposition.h"
#include "support/http.h"
#include "support/kernel_truth.h"
#include "support/names.h"
#include "support/process.h"
#include "support/require.h"

namespace migwatch::testing {

inline const std::string kMigwatch = MW_MIGWATCH_PATH;
inline const std::string kWorkload = MW_WORKLOAD_PATH;

}  // namespace migwatch::testing
