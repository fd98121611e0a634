# Builds (ACTION=build) or runs (ACTION=run) the web fuzzers for CTest.
#   build: -DSOURCE_DIR=<repository> -DBUILD_DIR=<dir>
#   run:   -DBUILD_DIR=<dir> -DTARGET=<name> -DSEED_CORPUS=<dir>
#          -DMAX_TOTAL_TIME=<seconds>
# Any failure, a missing clang or libFuzzer included, ends in FATAL_ERROR,
# which fails the test.
cmake_minimum_required(VERSION 3.18)

if(ACTION STREQUAL "build")
  find_program(CLANGXX NAMES clang++-14 clang++)
  if(NOT CLANGXX)
    message(FATAL_ERROR "clang++ not found: the fuzzers need clang and "
      "libFuzzer (on Debian: apt-get install clang-14 libclang-rt-14-dev)")
  endif()
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/web/fuzz -B ${BUILD_DIR}
      -DCMAKE_CXX_COMPILER=${CLANGXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo
      -DMIGWATCH_SOURCE_DIR=${SOURCE_DIR}
    RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "configuring the fuzzers failed (see above)")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR}
    RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "building the fuzzers failed (see above)")
  endif()
elseif(ACTION STREQUAL "run")
  set(fuzzer ${BUILD_DIR}/${TARGET})
  if(NOT EXISTS ${fuzzer})
    message(FATAL_ERROR "${fuzzer} does not exist: web_fuzz_build failed?")
  endif()
  # libFuzzer adds what it finds to the first corpus directory: a scratch
  # one, so the checked-in seeds stay as they are.
  set(corpus ${BUILD_DIR}/corpus/${TARGET})
  set(artifacts ${BUILD_DIR}/artifacts/${TARGET}/)
  file(MAKE_DIRECTORY ${corpus} ${artifacts})
  execute_process(
    COMMAND ${fuzzer} -max_total_time=${MAX_TOTAL_TIME}
      -artifact_prefix=${artifacts} -print_final_stats=1
      ${corpus} ${SEED_CORPUS}
    RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${TARGET} failed (exit ${result}); the input that "
      "crashed it is in ${artifacts}")
  endif()
else()
  message(FATAL_ERROR "ACTION must be build or run, not '${ACTION}'")
endif()
