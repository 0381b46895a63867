# firehook_library(NAME DEPS <targets...> TEST_DEPS <targets...>)
#
# One static library per folder of src/: every NAME.cpp that is not *_test.cpp, *_bench.cpp or
# main.cpp. The folder's *_test.cpp files become one GoogleTest executable NAME_test, registered
# with CTest; its *_bench.cpp files become one Google Benchmark executable NAME_bench.
# Only the listed DEPS are linked, so a folder that includes from a folder it must not
# depend on fails to link (DESIGN.md: dependencies point one way).
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)

function(firehook_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wno-sign-conversion -Wnon-virtual-dtor -Werror)
  # GCC 12 at -O3 has two known false positives in libstdc++ code: members of std::variant
  # alternatives "maybe uninitialized" when moved (GCC bug 105562 and friends), and -Wrestrict on
  # std::string concatenation (GCC bug 105329). The Debug and Asan builds, which run the tests,
  # keep both warnings.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE
      $<$<CONFIG:Release,RelWithDebInfo>:-Wno-maybe-uninitialized -Wno-restrict>)
  endif()
endfunction()

function(firehook_library name)
  cmake_parse_arguments(ARG "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB all_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(sources ${all_sources})
  list(FILTER sources EXCLUDE REGEX "(_test|_bench|/main)\\.cpp$")
  add_library(firehook_${name} STATIC ${sources})
  target_include_directories(firehook_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(firehook_${name} PUBLIC ${ARG_DEPS})
  firehook_warnings(firehook_${name})

  set(tests ${all_sources})
  list(FILTER tests INCLUDE REGEX "_test\\.cpp$")
  if(tests AND FIREHOOK_TESTS)
    add_executable(${name}_test ${tests})
    target_link_libraries(${name}_test PRIVATE firehook_${name} ${ARG_TEST_DEPS} GTest::gmock GTest::gtest_main)
    firehook_warnings(${name}_test)
    add_test(NAME ${name} COMMAND ${name}_test)
  endif()

  set(benches ${all_sources})
  list(FILTER benches INCLUDE REGEX "_bench\\.cpp$")
  if(benches AND FIREHOOK_BENCH)
    add_executable(${name}_bench ${benches})
    target_link_libraries(${name}_bench PRIVATE firehook_${name} benchmark::benchmark_main)
    firehook_warnings(${name}_bench)
  endif()
endfunction()
