# pg2kafka_add_plugin(<target> KIND source|sink NAME <name> SOURCES <files...>
#                     [LINK <libraries...>] [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds a pg2kafka plugin: a shared module named pg2kafka-<kind>-<name>.so that exports only
# its entry function, compiled against the pg2kafka SDK (target pg2kafka::sdk). Used by
# pg2kafka's own plugins and, through find_package(pg2kafka), by third-party plugins.
#
# Hidden visibility alone still exports the standard library's template instantiations (vague
# linkage), which could bind to another plugin's copies; a linker version script keeps the entry
# function the only exported symbol.
function(pg2kafka_add_plugin target)
  cmake_parse_arguments(P "NO_INSTALL" "KIND;NAME;OUTPUT_DIRECTORY" "SOURCES;LINK" ${ARGN})
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
    target_link_options(${target} PRIVATE "LINKER:--version-script=${exports}")
  endif()
  if(P_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${P_OUTPUT_DIRECTORY}")
  elseif(DEFINED PG2KAFKA_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${PG2KAFKA_PLUGIN_OUTPUT_DIR}")
  endif()
  if(NOT P_NO_INSTALL AND DEFINED PG2KAFKA_PLUGIN_INSTALL_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION "${PG2KAFKA_PLUGIN_INSTALL_DIR}")
  endif()
endfunction()
