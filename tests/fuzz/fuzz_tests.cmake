# The CTest side of the libFuzzer sub-projects (fuzzer.cmake here):
#
# migwatch_fuzz_tests(<component> TARGETS <name>... SECONDS <n> LABELS <label>...)
#   <component>_fuzz_build builds tests/<component>/fuzz with clang++ at test
#   time (build.cmake) and fails if clang++ or libFuzzer is missing; it is the
#   fixture of each <component>_fuzz_<name>, which fuzzes fuzz_<name> for
#   SECONDS from a copy of tests/<component>/corpus/<name>/ (run.cmake) and
#   fails on a crash. `ctest -LE fuzz` leaves them out.
function(migwatch_fuzz_tests component)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "SECONDS" "TARGETS;LABELS")
  set(source_dir ${PROJECT_SOURCE_DIR}/tests/${component})
  set(build_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz-build)
  add_test(NAME ${component}_fuzz_build
    COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${source_dir}/fuzz -DBINARY_DIR=${build_dir}
            -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/build.cmake)
  set_tests_properties(${component}_fuzz_build PROPERTIES
    FIXTURES_SETUP ${component}_fuzzers LABELS "${arg_LABELS}" TIMEOUT 900)
  foreach(name IN LISTS arg_TARGETS)
    add_test(NAME ${component}_fuzz_${name}
      COMMAND ${CMAKE_COMMAND} -DFUZZER=${build_dir}/fuzz_${name}
              -DCORPUS=${source_dir}/corpus/${name}
              -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/fuzz-runs/${name}
              -DSECONDS=${arg_SECONDS}
              -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/run.cmake)
    set_tests_properties(${component}_fuzz_${name} PROPERTIES
      FIXTURES_REQUIRED ${component}_fuzzers LABELS "${arg_LABELS}" TIMEOUT 300)
  endforeach()
endfunction()
