# pg2kafka_add_plugin(<target> KIND source|sink NAME <name> SOURCES <files...>
#                     [LINK <libraries...>] [OUTPUT_DIRECTORY <dir>]
#                     [INSTALL_DESTINATION <dir>] [COMPONENT <component>] [NO_INSTALL])
#
# Builds a pg2kafka plugin: a shared module named pg2kafka-<kind>-<name>.so that exports only
# its entry function, compiled against the pg2kafka SDK (target pg2kafka::sdk). Used by
# pg2kafka's own plugins and, through find_package(pg2kafka), by third-party plugins.
#
# Installing (`cmake --install`) puts the plugin where the host looks for it:
#   - in pg2kafka's own tree, into <prefix>/<libdir>/pg2kafka/plugins (PG2KAFKA_PLUGIN_INSTALL_DIR);
#   - out of tree, into the plugin directory of the pg2kafka installation that find_package
#     found (PG2KAFKA_INSTALLED_PLUGIN_DIR, an absolute path), so that its binary lists the
#     plugin without any flag;
#   - or into INSTALL_DESTINATION when given (then name it with --plugin-dir or
#     PG2KAFKA_PLUGIN_PATH). NO_INSTALL installs nothing.
# COMPONENT names the install component (for CPack); pg2kafka's own plugins are in `runtime`, the
# pg2kafka package.
#
# Hidden visibility alone still exports the standard library's template instantiations (vague
# linkage), which could bind to another plugin's copies; a linker version script keeps the entry
# function the only exported symbol. The module is linked with -z defs: a symbol that no linked
# library defines (a library forgotten in LINK) fails the build, instead of failing when the
# host loads the plugin.
function(pg2kafka_add_plugin target)
  cmake_parse_arguments(P "NO_INSTALL" "KIND;NAME;OUTPUT_DIRECTORY;INSTALL_DESTINATION;COMPONENT"
    "SOURCES;LINK" ${ARGN})
  if(NOT P_KIND MATCHES "^(source|sink)$")
    message(FATAL_ERROR "pg2kafka_add_plugin(${target}): KIND must be source or sink")
  endif()
  if(NOT P_NAME MATCHES "^[a-z0-9]+(-[a-z0-9]+)*$")
    message(FATAL_ERROR "pg2kafka_add_plugin(${target}): NAME must be lower-hyphenated")
  endif()
  add_library(${target} MODULE ${P_SOURCES})
  target_link_libraries(${target} PRIVATE pg2kafka::sdk ${P_LINK})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "pg2kafka-${P_KIND}-${P_NAME}"
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    set(exports "${CMAKE_CURRENT_BINARY_DIR}/${target}-exports.map")
    file(WRITE "${exports}" "{\n  global: p2k_plugin_entry_v1;\n  local: *;\n};\n")
    target_link_options(${target} PRIVATE "LINKER:--version-script=${exports}" "LINKER:-z,defs")
  endif()
  if(P_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${P_OUTPUT_DIRECTORY}")
  elseif(DEFINED PG2KAFKA_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${PG2KAFKA_PLUGIN_OUTPUT_DIR}")
  endif()
  if(P_NO_INSTALL)
    return()
  endif()
  if(P_INSTALL_DESTINATION)
    set(destination "${P_INSTALL_DESTINATION}")
  elseif(DEFINED PG2KAFKA_PLUGIN_INSTALL_DIR)
    set(destination "${PG2KAFKA_PLUGIN_INSTALL_DIR}")
  elseif(DEFINED PG2KAFKA_INSTALLED_PLUGIN_DIR)
    set(destination "${PG2KAFKA_INSTALLED_PLUGIN_DIR}")
  else()
    message(FATAL_ERROR "pg2kafka_add_plugin(${target}): no plugin directory to install into: "
      "use find_package(pg2kafka), or give INSTALL_DESTINATION or NO_INSTALL")
  endif()
  if(P_COMPONENT)
    set(component COMPONENT "${P_COMPONENT}")
  elseif(DEFINED PG2KAFKA_PLUGIN_INSTALL_DIR)
    set(component COMPONENT runtime)
  else()
    set(component "")
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION "${destination}" ${component})
endfunction()
