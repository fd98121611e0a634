# Runs one libFuzzer target for a bounded time on a fresh copy of its seed
# corpus, and fails on any crash, sanitizer report, leak or timeout:
#   cmake -DFUZZER=<binary> -DCORPUS=<seed dir> -DWORK_DIR=<dir> -DSECONDS=<n> -P run.cmake
foreach(variable FUZZER CORPUS WORK_DIR SECONDS)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "run.cmake: -D${variable}=... is required")
  endif()
endforeach()

if(NOT EXISTS "${FUZZER}")
  message(FATAL_ERROR "${FUZZER} does not exist: the libFuzzer build failed or did not run "
    "(see the output of the <component>_fuzz_build test)")
endif()
file(GLOB seeds "${CORPUS}/*")
if(NOT seeds)
  message(FATAL_ERROR "the seed corpus ${CORPUS} is empty or missing")
endif()

# The fuzzer adds inputs to its corpus directory: work on a copy so that the
# checked-in seeds stay as they are.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
file(COPY ${seeds} DESTINATION "${WORK_DIR}/corpus")

execute_process(
  COMMAND "${FUZZER}" -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 "-artifact_prefix=${WORK_DIR}/" "${WORK_DIR}/corpus"
  RESULT_VARIABLE result
  ERROR_VARIABLE log)

string(REGEX MATCHALL "stat::[a-z_]+: *[0-9]+" stats "${log}")
string(REPLACE ";" "\n" stats "${stats}")
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${result}); the input that triggered it is in "
    "${WORK_DIR}/\n${log}")
endif()
if(NOT stats MATCHES "stat::number_of_executed_units: *[1-9]")
  message(FATAL_ERROR "${FUZZER} ran no inputs\n${log}")
endif()
message("${stats}")
