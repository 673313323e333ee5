# Warning and sanitizer settings for kpiscale's own targets. Third-party headers come in through
# IMPORTED targets, whose include directories are SYSTEM, so they stay out of these warnings.
add_library(kpiscale_warnings INTERFACE)
target_compile_options(kpiscale_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual -Wold-style-cast
  -Wvla -Wcast-align -Wnull-dereference -Wimplicit-fallthrough -Wformat=2)
if(KPISCALE_WERROR)
  target_compile_options(kpiscale_warnings INTERFACE -Werror)
endif()

# Debug information as line tables (-g1): what perf, gdb backtraces and sanitizer reports use.
# Full -g made the template-heavy headers (fmt, CLI11, cpp-httplib) about 40% slower to compile
# (common/src/config.cc: 42 s with -g, 30 s with -g1, 29 s without). -DKPISCALE_DEBUG_INFO=-g
# brings full variable information back for a debugging session.
set(KPISCALE_DEBUG_INFO "-g1" CACHE STRING "Debug-information flag for Debug/RelWithDebInfo builds")
if(CMAKE_BUILD_TYPE MATCHES "^(Debug|RelWithDebInfo)$")
  add_compile_options(${KPISCALE_DEBUG_INFO})
endif()

if(KPISCALE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

# Adds a gtest binary made of every *_test.cc in the calling folder, registered with ctest under
# the given label (unit or integration).
function(kpiscale_add_test_binary name label)
  cmake_parse_arguments(ARG "" "" "LIBS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc)
  if(NOT sources)
    return()
  endif()
  add_executable(${name} ${sources})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main kpiscale_warnings)
  target_compile_definitions(${name} PRIVATE
    KPISCALE_SHARED_DIR="${KPISCALE_SHARED_DIR}"
    KPISCALE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    KPISCALE_BINARY_DIR="${PROJECT_BINARY_DIR}")
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS ${label})
endfunction()
