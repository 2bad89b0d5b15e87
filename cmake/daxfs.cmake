# Helpers shared by every layer's CMakeLists.txt.

# Each layer library exposes only its own headers: src/<layer> is staged in the build tree as
# inc/<library>/<layer> (a symlink) and only that directory is on the library's include path, so
# "layer/file.h" resolves for the library and what links it (the layers above), and a lower
# layer that includes an upper layer's header fails to compile. The public API (include/daxfs)
# is on every library's path. FACE lists the headers the layers above may see; without it they
# see them all. A library with a FACE also gets <library>_internal, an interface target that
# exposes every header of the layer (for its own tests and the one layer allowed inside).
function(daxfs_stage_layer name layer)
  set(root ${CMAKE_BINARY_DIR}/inc/${name})
  file(MAKE_DIRECTORY ${root})
  if(NOT EXISTS ${root}/${layer})
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${root}/${layer} SYMBOLIC)
  endif()
endfunction()

# daxfs_library(NAME SRCS ... DEPS ... [INTERNAL_DEPS ...] [FACE headers...]): one layer
# library (the layer is the name of the folder). Headers are included as "base/status.h" etc.
# DEPS are public (their faces are seen by what links this library); INTERNAL_DEPS are linked
# privately (their headers reach only this library's sources: how the scrub layer sees all of
# fs through daxfs_fs_internal while the layers above it see only fs's face).
function(daxfs_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS;INTERNAL_DEPS;FACE" ${ARGN})
  get_filename_component(layer ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  add_library(${name} STATIC ${ARG_SRCS})
  daxfs_stage_layer(${name} ${layer})
  if(ARG_FACE)
    set(face ${CMAKE_BINARY_DIR}/inc/${name}-face/${layer})
    file(REMOVE_RECURSE ${face})
    file(MAKE_DIRECTORY ${face})
    foreach(header ${ARG_FACE})
      file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${header} ${face}/${header} SYMBOLIC)
    endforeach()
    target_include_directories(${name} PRIVATE ${CMAKE_BINARY_DIR}/inc/${name})
    target_include_directories(${name} PUBLIC ${CMAKE_BINARY_DIR}/inc/${name}-face)
    add_library(${name}_internal INTERFACE)
    target_include_directories(${name}_internal INTERFACE ${CMAKE_BINARY_DIR}/inc/${name})
    target_link_libraries(${name}_internal INTERFACE ${name})
  else()
    target_include_directories(${name} PUBLIC ${CMAKE_BINARY_DIR}/inc/${name})
  endif()
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  if(ARG_INTERNAL_DEPS)
    target_link_libraries(${name} PRIVATE ${ARG_INTERNAL_DEPS})
  endif()
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

# daxfs_layering_probe(NAME SOURCE LINKS target [EXPECT_MISSING header]): a ctest test that
# compiles SOURCE (not part of the normal build) with the include paths of LINKS. With
# EXPECT_MISSING it passes only when the compile fails because that header cannot be found (a
# wrong-way include); without, only when it compiles (the control: the probe itself is sound).
function(daxfs_layering_probe name)
  cmake_parse_arguments(ARG "" "SOURCE;LINKS;EXPECT_MISSING" "" ${ARGN})
  if(NOT DAXFS_BUILD_TESTS)
    return()
  endif()
  add_library(${name} OBJECT EXCLUDE_FROM_ALL ${ARG_SOURCE})
  target_link_libraries(${name} PRIVATE ${ARG_LINKS})
  add_test(NAME layering.${name}
           COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${CMAKE_BINARY_DIR} -DTARGET=${name}
                   -DEXPECT_MISSING=${ARG_EXPECT_MISSING}
                   -P ${PROJECT_SOURCE_DIR}/tests/layering/probe.cmake)
  # One build of the tree at a time: ninja must not run twice in one build directory.
  set_tests_properties(layering.${name} PROPERTIES LABELS "unit;layering"
                       RESOURCE_LOCK build_tree TIMEOUT 120)
endfunction()
