# CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS): removes from the staged
# executables the sections dh_strip removes, .comment (compiler versions) and
# .note, before CPACK_DEBIAN_DEBUGINFO_PACKAGE moves their debug information
# to the -dbgsym package and strips them.
find_program(_objcopy objcopy REQUIRED)
file(GLOB _executables LIST_DIRECTORIES false
  "${CPACK_TEMPORARY_DIRECTORY}/usr/sbin/*" "${CPACK_TEMPORARY_DIRECTORY}/usr/bin/*")
foreach(_file IN LISTS _executables)
  file(READ "${_file}" _magic LIMIT 4 HEX)
  if(_magic STREQUAL "7f454c46")
    execute_process(COMMAND "${_objcopy}" --remove-section=.comment --remove-section=.note "${_file}"
      COMMAND_ERROR_IS_FATAL ANY)
  endif()
endforeach()
