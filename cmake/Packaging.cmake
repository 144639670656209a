# Debian packages, built with CPack (scripts/package.sh; see packaging/README.md):
#
#   pg2kafka      component `runtime`: bin/pg2kafka, the plugins, the default pipeline and the
#                 service's environment as conffiles in /etc/pg2kafka, the hardened systemd unit,
#                 the SQL for installing the schema by hand, the documentation
#   pg2kafka-dev  component `dev`: the plugin SDK headers, the CMake package, the conformance
#                 suites (when the tests are built), the plugin examples
#
# The package is built from a tree configured for the Debian layout:
#   -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_SYSCONFDIR=/etc
# GNUInstallDirs gives the prefix /usr the full sysconfdir /etc (which the binary is compiled to
# look in) but keeps the relative CMAKE_INSTALL_SYSCONFDIR "etc", which install() puts under the
# prefix (/usr/etc); an absolute CMAKE_INSTALL_SYSCONFDIR puts the conffiles where the binary
# looks. cpack refuses a tree configured otherwise.
#
# Included at the end of the top-level CMakeLists.txt, after every install() of the project.

set(PG2KAFKA_PACKAGING_DIR "${PROJECT_SOURCE_DIR}/packaging")

# ---- What the pg2kafka package adds to the project's install rules ----

# The unit's directory: /lib/systemd/system for the Debian layout (where Debian 12 packages put
# units), else under the prefix (systemd also reads /usr/local/lib/systemd/system).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(default_unit_dir "/lib/systemd/system")
else()
  set(default_unit_dir "lib/systemd/system")
endif()
set(PG2KAFKA_SYSTEMD_UNIT_DIR "${default_unit_dir}" CACHE STRING
  "Where the systemd unit is installed (relative: under the prefix)")

# The unit names the installed binary and environment file.
set(PG2KAFKA_UNIT_BINARY "${CMAKE_INSTALL_FULL_BINDIR}/pg2kafka")
set(PG2KAFKA_UNIT_ENV_FILE "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pg2kafka/env")
set(PG2KAFKA_UNIT_DOC "${CMAKE_INSTALL_FULL_DOCDIR}/README.Debian.md")
configure_file("${PG2KAFKA_PACKAGING_DIR}/systemd/pg2kafka.service"
  "${CMAKE_BINARY_DIR}/packaging/pg2kafka.service" @ONLY)
install(FILES "${CMAKE_BINARY_DIR}/packaging/pg2kafka.service"
  DESTINATION "${PG2KAFKA_SYSTEMD_UNIT_DIR}" COMPONENT runtime)

# The service's environment holds credentials: never readable by others (the postinst gives
# its group to pg2kafka).
install(FILES "${PG2KAFKA_PACKAGING_DIR}/env"
  DESTINATION "${CMAKE_INSTALL_SYSCONFDIR}/pg2kafka"
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
  COMPONENT runtime)

# The SQL, for a DBA who installs or upgrades the schema by hand (psql -f .../install.sql; the
# pg-outbox plugin carries the same SQL for perform_migrations=true).
install(DIRECTORY "${PROJECT_SOURCE_DIR}/sql/"
  DESTINATION "${CMAKE_INSTALL_DATADIR}/pg2kafka/sql"
  COMPONENT runtime
  FILES_MATCHING PATTERN "*.sql" PATTERN "README.md")

# The documentation: the README, the packaging notes, each plugin's README.
install(FILES "${PROJECT_SOURCE_DIR}/README.md"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT runtime)
install(FILES "${PG2KAFKA_PACKAGING_DIR}/README.md"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}" RENAME README.Debian.md COMPONENT runtime)
foreach(plugin_dir sink-kafka sink-stdout source-generator source-pg-outbox)
  if(EXISTS "${PROJECT_SOURCE_DIR}/plugins/${plugin_dir}/README.md")
    install(FILES "${PROJECT_SOURCE_DIR}/plugins/${plugin_dir}/README.md"
      DESTINATION "${CMAKE_INSTALL_DOCDIR}/plugins" RENAME "${plugin_dir}.md"
      COMPONENT runtime)
  endif()
endforeach()

# ---- What the pg2kafka-dev package adds ----

# The conformance suites, which the plugin template's test runs (PG2KAFKA_SINK_CONFORMANCE of the
# CMake package). They are built with the tests (tests/conformance installs them too, without a
# component).
foreach(suite pg2kafka-sink-conformance pg2kafka-source-conformance)
  if(TARGET ${suite})
    install(TARGETS ${suite} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT dev)
  endif()
endforeach()
set(dev_doc_dir "${CMAKE_INSTALL_DATAROOTDIR}/doc/pg2kafka-dev")
install(FILES "${PROJECT_SOURCE_DIR}/docs/plugin-authoring.md"
  DESTINATION "${dev_doc_dir}" COMPONENT dev)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/examples/"
  DESTINATION "${dev_doc_dir}/examples" COMPONENT dev
  PATTERN "build" EXCLUDE)

# Everything the packages contain, so that scripts/package.sh builds only that (not the tests).
add_custom_target(pg2kafka-packaged)
foreach(target pg2kafka sink_stdout sink_kafka source_pg_outbox source_generator
    pg2kafka-sink-conformance pg2kafka-source-conformance)
  if(TARGET ${target})
    add_dependencies(pg2kafka-packaged ${target})
  endif()
endforeach()

# ---- CPack: Debian packages, one per component ----

set(PG2KAFKA_PACKAGE_MAINTAINER "pg2kafka maintainers <pg2kafka@localhost>" CACHE STRING
  "Maintainer field of the Debian packages")
set(PG2KAFKA_PACKAGE_RELEASE "1" CACHE STRING
  "Debian revision of the packages (the version is <project version>-<this>)")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pg2kafka)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${PG2KAFKA_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/packages")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${PG2KAFKA_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Dependencies: dpkg-shlibdeps computes the libraries' packages (libpq5, librdkafka1, the Boost
# libraries, ...) with their minimum versions, and the debug symbols go into pg2kafka-dbgsym and
# pg2kafka-dev-dbgsym (.ddeb; the binaries in the packages are stripped). CPack needs `file` for
# both (it sorts the files with it); without it the dependencies are stated here, without
# versions, the binaries are stripped and their debug symbols are not packaged.
find_program(PG2KAFKA_FILE_PROGRAM file)
find_program(PG2KAFKA_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(EXISTS "${PG2KAFKA_FILE_PROGRAM}" AND EXISTS "${PG2KAFKA_DPKG_SHLIBDEPS}")
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
  set(runtime_library_depends "")
  set(dev_library_depends "")
else()
  message(STATUS "Packaging: `file` or dpkg-shlibdeps is missing: the packages' library "
    "dependencies are stated, not computed, and there are no dbgsym packages")
  set(CPACK_STRIP_FILES ON)
  set(boost_suffix "${Boost_MAJOR_VERSION}.${Boost_MINOR_VERSION}.${Boost_SUBMINOR_VERSION}")
  set(dev_library_depends "libc6, libgcc-s1, libstdc++6, libboost-json${boost_suffix}")
  set(runtime_library_depends
    "${dev_library_depends}, libboost-program-options${boost_suffix}, libpq5, librdkafka1")
endif()

# The first line of each description is the package's summary.
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION [[stream PostgreSQL table changes to Kafka through an outbox
Triggers write every INSERT, UPDATE and DELETE of the tracked tables into an
outbox table in the pg2kafka schema; the pg2kafka daemon drains it into
Kafka, in order per key, losing nothing. For hosted databases without access
to the WAL: no logical replication, no extension, nothing on the database host.
.
This package contains the daemon, its plugins (pg-outbox, kafka, stdout,
generator), the default pipeline, a hardened systemd unit (not enabled until
configured) and the SQL to install the schema by hand.]])
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME pg2kafka)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
# adduser: the postinst creates the system user.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "adduser")
if(runtime_library_depends)
  string(APPEND CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS ", ${runtime_library_depends}")
endif()
# psql, to install the schema by hand from /usr/share/pg2kafka/sql.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SUGGESTS "postgresql-client")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
  "${PG2KAFKA_PACKAGING_DIR}/debian/conffiles"
  "${PG2KAFKA_PACKAGING_DIR}/debian/postinst"
  "${PG2KAFKA_PACKAGING_DIR}/debian/prerm"
  "${PG2KAFKA_PACKAGING_DIR}/debian/postrm")

set(CPACK_COMPONENT_DEV_DESCRIPTION [[pg2kafka plugin SDK: headers, CMake package, conformance suites
The versioned C plugin interface and the header-only C++ SDK for writing
pg2kafka source and sink plugins, the CMake package (find_package(pg2kafka),
pg2kafka_add_plugin()), the sink and source conformance suites and the
example plugins.]])
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME pg2kafka-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${dev_library_depends}")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "cmake (>= 3.20), g++ (>= 4:12) | clang (>= 1:15)")

# cpack refuses to package a tree that is not configured for the Debian layout (see the top).
set(PG2KAFKA_DEB_LAYOUT_PROBLEM "")
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(PG2KAFKA_DEB_LAYOUT_PROBLEM "CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}, not /usr")
elseif(NOT CMAKE_INSTALL_SYSCONFDIR STREQUAL "/etc")
  string(CONCAT PG2KAFKA_DEB_LAYOUT_PROBLEM
    "CMAKE_INSTALL_SYSCONFDIR is ${CMAKE_INSTALL_SYSCONFDIR}, not /etc: the configuration would be "
    "installed into /usr/${CMAKE_INSTALL_SYSCONFDIR}/pg2kafka while the binary looks in /etc/pg2kafka")
  message(WARNING "Packaging: ${PG2KAFKA_DEB_LAYOUT_PROBLEM}. Configure with "
    "-DCMAKE_INSTALL_SYSCONFDIR=/etc (scripts/package.sh does).")
endif()
configure_file("${PG2KAFKA_PACKAGING_DIR}/cpack-project-config.cmake.in"
  "${CMAKE_BINARY_DIR}/packaging/cpack-project-config.cmake" @ONLY)
set(CPACK_PROJECT_CONFIG_FILE "${CMAKE_BINARY_DIR}/packaging/cpack-project-config.cmake")

include(CPack)
