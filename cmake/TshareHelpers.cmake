# tshare_cc_test(NAME name SRCS a_test.cc ... DEPS target ... [LABELS label ...])
#
# One GoogleTest binary whose tests ctest discovers one by one. Labels let scripts/test.sh
# pick suites (for example "core" for the ThreadSanitizer build, "e2e" for tests that start
# real binaries).
function(tshare_cc_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SRCS})
  if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=thread")
    target_sources(${T_NAME} PRIVATE "${PROJECT_SOURCE_DIR}/tests/tsan_suppressions.cc")
  endif()
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gmock GTest::gtest_main)
  target_include_directories(${T_NAME} PRIVATE "${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 120
    PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()

# tshare_install_headers(DIR core HEADERS a.h b.h ...): installs public headers under
# include/tshare/<DIR>/ so that <tshare/core/share.h> and the headers' own root-relative
# includes ("core/future.h", resolved through include/tshare) both work.
function(tshare_install_headers)
  cmake_parse_arguments(H "" "DIR" "HEADERS" ${ARGN})
  install(FILES ${H_HEADERS} DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/tshare/${H_DIR}")
endfunction()
