# Configures and builds a libFuzzer sub-project, tests/<component>/fuzz, with
# clang++. Run by the CTest test <component>_fuzz_build, the fixture the
# <component>_fuzz_<name> tests need (fuzz_tests.cmake):
#   cmake -DSOURCE_DIR=<tests/<component>/fuzz> -DBINARY_DIR=<dir> -P build.cmake
# clang++ is looked up here, at test time, so installing it needs no reconfigure.
foreach(variable SOURCE_DIR BINARY_DIR)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "build.cmake: -D${variable}=... is required")
  endif()
endforeach()

find_program(CLANGXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14)
if(NOT CLANGXX)
  message(FATAL_ERROR "clang++ not found: the libFuzzer tests cannot be built. "
    "Install clang and its libFuzzer runtime (Debian 12: apt-get install clang-14 libclang-rt-14-dev).")
endif()

execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -DCMAKE_CXX_COMPILER=${CLANGXX}
  RESULT_VARIABLE configure_result)
if(NOT configure_result EQUAL 0)
  message(FATAL_ERROR "configuring the libFuzzer build with ${CLANGXX} failed (see above)")
endif()

cmake_host_system_information(RESULT cores QUERY NUMBER_OF_LOGICAL_CORES)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} --parallel ${cores}
  RESULT_VARIABLE build_result)
if(NOT build_result EQUAL 0)
  message(FATAL_ERROR "building the libFuzzer targets with ${CLANGXX} failed (see above)")
endif()
