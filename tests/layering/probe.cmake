# Runs one layering probe (cmake/daxfs.cmake, daxfs_layering_probe): builds TARGET in BUILD_DIR
# and judges the outcome. With EXPECT_MISSING the build must fail because that header is not on
# the probe's include path; without, the build must succeed.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT_MISSING)
  if(rc EQUAL 0)
    message(FATAL_ERROR "${TARGET} compiled, but it includes ${EXPECT_MISSING}, which its layer "
                        "must not see")
  endif()
  string(FIND "${out}" "${EXPECT_MISSING}" named)
  string(FIND "${out}" "No such file" gcc_missing)
  string(FIND "${out}" "file not found" clang_missing)
  if(named EQUAL -1 OR (gcc_missing EQUAL -1 AND clang_missing EQUAL -1))
    message(FATAL_ERROR "${TARGET} failed, but not because ${EXPECT_MISSING} is unreachable:\n${out}")
  endif()
  message(STATUS "${TARGET}: ${EXPECT_MISSING} is not reachable, as it must be")
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} must compile:\n${out}")
endif()
