# `cmake --install` gives a package: find_package(cpattn) and target cpattn::cpattn.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS cpattn EXPORT cpattnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/cpattn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/include/cpattn/config.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cpattn)
install(EXPORT cpattnTargets NAMESPACE cpattn:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpattn)
configure_package_config_file(cmake/cpattnConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/cpattnConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpattn)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cpattnConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cpattnConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/cpattnConfigVersion.cmake
              cmake/FindNCCL.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpattn)
if(TARGET cpattn_cli)
  install(TARGETS cpattn_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
