# Shared compile settings and the helper that declares one static library per module.

add_library(pprofd_specs INTERFACE)
target_compile_options(pprofd_specs INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  # g++ 12 reports Asio coroutine frames falsely at -O2.
  -Wno-mismatched-new-delete
  # g++ 12 false positive on `"literal" + std::string&&` at -O2 (GCC bug 105651).
  -Wno-restrict
  -fno-omit-frame-pointer)
if(PPROFD_WERROR)
  target_compile_options(pprofd_specs INTERFACE -Werror)
endif()
if(PPROFD_SANITIZE)
  target_compile_options(pprofd_specs INTERFACE -fsanitize=address,undefined -fno-sanitize-recover=all)
  target_link_options(pprofd_specs INTERFACE -fsanitize=address,undefined)
endif()
target_compile_definitions(pprofd_specs INTERFACE
  BOOST_ASIO_NO_DEPRECATED SPDLOG_FMT_EXTERNAL)
target_include_directories(pprofd_specs INTERFACE ${PROJECT_SOURCE_DIR}/include)

# pprofd_module(<name> SOURCES ... DEPS ...): library pprofd_<name> linking only what it names.
function(pprofd_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(pprofd_${name} STATIC ${ARG_SOURCES})
  target_link_libraries(pprofd_${name} PUBLIC pprofd_specs ${ARG_DEPS})
endfunction()

# pprofd_unit_test(<module> SOURCES ...): one Catch2 executable per module, registered with ctest.
function(pprofd_unit_test module)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(unit_${module} ${ARG_SOURCES})
  target_link_libraries(unit_${module} PRIVATE pprofd_${module} ${ARG_DEPS} pprofd_test_main)
  add_test(NAME unit_${module} COMMAND unit_${module})
  set_tests_properties(unit_${module} PROPERTIES TIMEOUT 300 LABELS unit
    ENVIRONMENT "PPROFD_TESTDATA=${PROJECT_SOURCE_DIR}/tests/testdata")
endfunction()
