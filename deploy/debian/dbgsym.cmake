# CPack post-build script (CPACK_POST_BUILD_SCRIPTS): completes the
# migwatch-dbgsym package that CPACK_DEBIAN_DEBUGINFO_PACKAGE makes, the way
# dh_strip's dbgsym packages are:
#  - DEBIAN/md5sums lists paths relative to the root (CMake 3.25 writes the
#    absolute paths of its staging directory, which dpkg --verify and lintian
#    reject);
#  - /usr/share/doc/migwatch-dbgsym is a symbolic link to migwatch's
#    documentation (copyright, changelog), the package depending on exactly
#    that version of migwatch;
#  - the .debug files are not executable.
# It rebuilds the package with dpkg-deb from its own contents otherwise.

find_program(_dpkg_deb dpkg-deb REQUIRED)
foreach(_package IN LISTS CPACK_PACKAGE_FILES)
  if(NOT _package MATCHES "-dbgsym_[^/]*\\.ddeb$")
    continue()
  endif()
  set(_root "${_package}.tree")
  file(REMOVE_RECURSE "${_root}")
  execute_process(COMMAND "${_dpkg_deb}" --raw-extract "${_package}" "${_root}" COMMAND_ERROR_IS_FATAL ANY)

  file(GLOB_RECURSE _debug_files LIST_DIRECTORIES false RELATIVE "${_root}" "${_root}/usr/lib/debug/*")
  set(_md5sums "")
  foreach(_file IN LISTS _debug_files)
    file(CHMOD "${_root}/${_file}" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    file(MD5 "${_root}/${_file}" _md5)
    string(APPEND _md5sums "${_md5}  ${_file}\n")
  endforeach()
  file(WRITE "${_root}/DEBIAN/md5sums" "${_md5sums}")

  execute_process(COMMAND "${_dpkg_deb}" --field "${_package}" Package OUTPUT_VARIABLE _name
    OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  string(REGEX REPLACE "-dbgsym$" "" _main "${_name}")
  file(MAKE_DIRECTORY "${_root}/usr/share/doc")
  file(CREATE_LINK "${_main}" "${_root}/usr/share/doc/${_name}" SYMBOLIC)

  file(REMOVE "${_package}")
  # gzip as CPack's own packages (dpkg-deb's default, xz, takes far longer).
  execute_process(COMMAND "${_dpkg_deb}" --root-owner-group -Zgzip --build "${_root}" "${_package}"
    OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE "${_root}")
endforeach()
