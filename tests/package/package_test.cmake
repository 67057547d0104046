# Installs cpprof into a scratch prefix, then builds and runs a consumer
# project through find_package, through add_subdirectory, and through
# pkg-config. Run by CTest: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK=... -P package_test.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
set(prefix ${WORK}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/cpprof/server.h include/cpprof/options.h)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# 1. find_package(cpprof)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/consumer -B ${WORK}/by-package -G Ninja
    -DCMAKE_PREFIX_PATH=${prefix} -DCPPROF_VIA=package)
run(${CMAKE_COMMAND} --build ${WORK}/by-package)
run(${WORK}/by-package/consumer)
message(STATUS "find_package: ${last_output}")

# 2. add_subdirectory(cpprof)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package/consumer -B ${WORK}/by-subdirectory -G Ninja
    -DCPPROF_VIA=subdirectory -DCPPROF_SOURCE_DIR=${SOURCE_DIR})
run(${CMAKE_COMMAND} --build ${WORK}/by-subdirectory --target consumer)
run(${WORK}/by-subdirectory/consumer)
message(STATUS "add_subdirectory: ${last_output}")

# 3. pkg-config
file(GLOB_RECURSE pc_files ${prefix}/*/cpprof.pc)
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir ${pc_file} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run(pkg-config --cflags --libs cpprof)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(c++ -std=c++20 ${SOURCE_DIR}/tests/package/consumer/consumer.cc ${flags}
    -Wl,-rpath,${pc_dir}/.. -o ${WORK}/by-pkg-config)
run(${WORK}/by-pkg-config)
message(STATUS "pkg-config: ${last_output}")
