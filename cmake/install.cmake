# Installs the headers, both libraries, a CMake package (find_package(cpprof)
# gives cpprof::cpprof) and a pkg-config file.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cpprof DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS cpprof cpprof_static EXPORT cpprofTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT cpprofTargets NAMESPACE cpprof:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpprof)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/cpprofConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cpprofConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpprof)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cpprofConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cpprofConfig.cmake ${PROJECT_BINARY_DIR}/cpprofConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpprof)

# Relocatable: the prefix is found from where cpprof.pc lies, so a package
# installed with `cmake --install --prefix DIR` works wherever DIR is.
file(RELATIVE_PATH pc_to_prefix /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
configure_file(${PROJECT_SOURCE_DIR}/cmake/cpprof.pc.in ${PROJECT_BINARY_DIR}/cpprof.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cpprof.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
