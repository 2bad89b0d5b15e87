# Helpers shared by every layer's CMakeLists.txt.

# daxfs_library(NAME SRCS ... DEPS ...): one layer library. Headers are included as "base/status.h" etc.
function(daxfs_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  # The engine reports errors with Status, never exceptions (the CLI may use CLI11's).
  target_compile_options(${name} PRIVATE -fno-exceptions)
endfunction()

# daxfs_test(NAME SRCS ... DEPS ... [LABELS ...]): a GoogleTest binary registered with ctest.
# Every test carries the label "unit" unless LABELS says otherwise; "long" tests are not run by default.
function(daxfs_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT DAXFS_BUILD_TESTS)
    return()
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
  # A list of labels must reach the discovered tests as one escaped property value.
  string(REPLACE ";" "\\;" labels "${ARG_LABELS}")
  gtest_discover_tests(${name} PROPERTIES LABELS "${labels}" TIMEOUT ${ARG_TIMEOUT}
                       DISCOVERY_TIMEOUT 60)
endfunction()

# daxfs_benchmark(NAME SRCS ... DEPS ...): a Google Benchmark binary (never run by ctest).
function(daxfs_benchmark name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  if(NOT DAXFS_BUILD_BENCHMARKS)
    return()
  endif()
  add_executable(${name} ${ARG_SRCS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()
