# Shared build settings every target links: the standard, warnings and sanitizers live here
# once, so a target cannot quietly build with weaker checks than the rest.
include(GNUInstallDirs)

# ccache, when installed, shares compiled objects between build trees (dev, asan-less test,
# bench): most of a rebuild after switching trees is then cache hits. DAYBREAK_CCACHE=OFF skips it.
option(DAYBREAK_CCACHE "Compile through ccache when it is installed" ON)
find_program(DAYBREAK_CCACHE_PROGRAM ccache)
if(DAYBREAK_CCACHE AND DAYBREAK_CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${DAYBREAK_CCACHE_PROGRAM})
endif()

option(DAYBREAK_WERROR "Treat warnings as errors (CI turns this on)" OFF)
option(DAYBREAK_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

add_library(daybreak_settings INTERFACE)
target_compile_features(daybreak_settings INTERFACE cxx_std_20)
target_compile_options(daybreak_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough
  # GCC 12 reports -Wrestrict false positives inside libstdc++ string code at -O3 (GCC bug 105329).
  -Wno-restrict)
if(DAYBREAK_WERROR)
  target_compile_options(daybreak_settings INTERFACE -Werror)
endif()
if(DAYBREAK_SANITIZE)
  target_compile_options(daybreak_settings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(daybreak_settings INTERFACE -fsanitize=address,undefined)
endif()
