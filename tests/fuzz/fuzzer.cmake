# The convention of the libFuzzer sub-projects, tests/<component>/fuzz: each
# is a project of its own, configured and built with clang++ by the
# <component>_fuzz_build test (build.cmake here), because the main build may
# use another compiler. Its CMakeLists.txt includes this file after
# project() and declares each fuzzer with migwatch_add_fuzzer().
#
# Everything in the sub-project, the code under test included, gets coverage
# instrumentation and the sanitizers; any sanitizer report aborts, which
# libFuzzer records as a crash.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)

if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "libFuzzer targets need clang++, got ${CMAKE_CXX_COMPILER_ID} (${CMAKE_CXX_COMPILER})")
endif()

include(CheckCXXSourceCompiles)
set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer)
check_cxx_source_compiles([[
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }
]] MIGWATCH_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
if(NOT MIGWATCH_HAVE_LIBFUZZER)
  message(FATAL_ERROR "${CMAKE_CXX_COMPILER} cannot link -fsanitize=fuzzer: the libFuzzer runtime is missing (Debian: libclang-rt-<version>-dev)")
endif()

add_compile_options(-Wall -Wextra -g -O1 -fno-omit-frame-pointer
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all)
add_link_options(-fsanitize=address,undefined)

get_filename_component(MIGWATCH_SOURCE_DIR ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)

# migwatch_add_fuzzer(<name> [SOURCES <file>...] [INCLUDES <dir>...] [LIBRARIES <lib>...])
# The fuzzer fuzz_<name>, from tests/<component>/fuzz_<name>.cc and SOURCES,
# with the repository's include/ and INCLUDES, linked with LIBRARIES. Its
# test, <component>_fuzz_<name>, starts from tests/<component>/corpus/<name>/
# (migwatch_fuzz_tests() in fuzz_tests.cmake).
function(migwatch_add_fuzzer name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;INCLUDES;LIBRARIES")
  get_filename_component(component_dir ${CMAKE_CURRENT_SOURCE_DIR} DIRECTORY)
  add_executable(fuzz_${name} ${component_dir}/fuzz_${name}.cc ${arg_SOURCES})
  target_include_directories(fuzz_${name} PRIVATE ${MIGWATCH_SOURCE_DIR}/include ${arg_INCLUDES})
  target_link_libraries(fuzz_${name} PRIVATE ${arg_LIBRARIES})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
endfunction()
