# Installs migwatch's deploy files and configures the Debian package
# (cpack -G DEB). Included from the top-level CMakeLists.txt after the
# migwatch target, which installs itself to ${CMAKE_INSTALL_SBINDIR}.
#
# migwatch.service runs /usr/sbin/migwatch: packages always install under
# /usr; a direct "cmake --install" needs CMAKE_INSTALL_PREFIX=/usr as well.
# The unit and /etc/default/migwatch have fixed absolute destinations (where
# systemd and Debian look, whatever the prefix); stage with DESTDIR=.

get_filename_component(_migwatch_source_dir "${CMAKE_CURRENT_LIST_DIR}" DIRECTORY)
set(_migwatch_share "${CMAKE_INSTALL_DATADIR}/migwatch")

# Debian bookworm still ships units in /lib (merged /usr aliases it; dpkg
# does not know that, so a package must not move files between the two).
install(FILES "${CMAKE_CURRENT_LIST_DIR}/systemd/migwatch.service" DESTINATION /lib/systemd/system)
install(FILES "${CMAKE_CURRENT_LIST_DIR}/default/migwatch" DESTINATION /etc/default)

# The rules, their generator and its settings come from monitoring/; the
# generator keeps its installed name, so that an operator can write rules with
# other thresholds:
#   /usr/share/migwatch/prometheus/generate.py --set stopper_cpu_ratio=0.05 -o FILE
set(_migwatch_monitoring "${_migwatch_source_dir}/monitoring")
install(FILES
  "${_migwatch_monitoring}/migwatch.rules.yml"
  "${_migwatch_monitoring}/thresholds.json"
  "${_migwatch_monitoring}/README.md"
  DESTINATION "${_migwatch_share}/prometheus")
install(PROGRAMS "${_migwatch_monitoring}/rules.py"
  DESTINATION "${_migwatch_share}/prometheus" RENAME generate.py)

install(FILES
  "${_migwatch_source_dir}/dashboards/migwatch-host.json"
  "${_migwatch_source_dir}/dashboards/migwatch-vms.json"
  "${_migwatch_source_dir}/dashboards/migwatch-health.json"
  "${_migwatch_source_dir}/dashboards/README.md"
  DESTINATION "${_migwatch_share}/dashboards")

# The package's documentation: the copyright file as it is, the Debian
# changelog and the manual page compressed the way dh_compress does (gzip -9n:
# no name, no time stamp).
find_program(MIGWATCH_GZIP gzip REQUIRED)
set(_migwatch_generated "${CMAKE_BINARY_DIR}/deploy")
file(MAKE_DIRECTORY "${_migwatch_generated}")
install(FILES "${CMAKE_CURRENT_LIST_DIR}/debian/copyright" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
# lintian's overrides, each with the reason it does not apply.
install(FILES "${CMAKE_CURRENT_LIST_DIR}/debian/lintian-overrides"
  DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides" RENAME migwatch)

# The version's Debian revision comes from the changelog's latest entry,
# "migwatch (VERSION-REVISION) ...", whose VERSION must be the project's.
set(_migwatch_changelog "${CMAKE_CURRENT_LIST_DIR}/debian/changelog")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_migwatch_changelog}")
file(STRINGS "${_migwatch_changelog}" _migwatch_changelog_top LIMIT_COUNT 1)
if(NOT _migwatch_changelog_top MATCHES "^migwatch \\(([^ ()]+)-([^- ()]+)\\) ")
  message(FATAL_ERROR "${_migwatch_changelog}: the first line must read 'migwatch (VERSION-REVISION) ...', not '${_migwatch_changelog_top}'")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "${_migwatch_changelog}: the latest entry is for version ${CMAKE_MATCH_1}, the project's is ${PROJECT_VERSION}: add an entry for ${PROJECT_VERSION}-1")
endif()
set(CPACK_DEBIAN_PACKAGE_RELEASE "${CMAKE_MATCH_2}")
add_custom_command(OUTPUT "${_migwatch_generated}/changelog.Debian.gz"
  COMMAND "${CMAKE_COMMAND}" -E copy "${_migwatch_changelog}" "${_migwatch_generated}/changelog.Debian"
  COMMAND "${MIGWATCH_GZIP}" -9n -f "${_migwatch_generated}/changelog.Debian"
  DEPENDS "${_migwatch_changelog}"
  COMMENT "Compressing the Debian changelog"
  VERBATIM)
add_custom_target(migwatch_changelog ALL DEPENDS "${_migwatch_generated}/changelog.Debian.gz")
install(FILES "${_migwatch_generated}/changelog.Debian.gz" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# migwatch.8: help2man on the built binary's --help and its commands' --help
# (man-help.sh puts them together), so that the page says what the CLI says.
option(MIGWATCH_MANPAGE "Generate and install the manual page migwatch.8 (needs help2man)" ON)
if(MIGWATCH_MANPAGE)
  find_program(MIGWATCH_HELP2MAN help2man)
  if(NOT MIGWATCH_HELP2MAN)
    message(FATAL_ERROR "help2man not found: it writes the manual page migwatch.8. Install it (deploy/install-build-deps.sh does) or configure with -DMIGWATCH_MANPAGE=OFF, and the package has no manual page.")
  endif()
  add_custom_command(OUTPUT "${_migwatch_generated}/migwatch.8.gz"
    COMMAND "${CMAKE_COMMAND}" -E env "MIGWATCH_BINARY=$<TARGET_FILE:migwatch>"
            "${MIGWATCH_HELP2MAN}" --section=8 --no-info
            "--name=kernel-side accounting of task migrations and migration/N stopper time"
            "--output=${_migwatch_generated}/migwatch.8"
            "${CMAKE_CURRENT_LIST_DIR}/man-help.sh"
    COMMAND "${MIGWATCH_GZIP}" -9n -f "${_migwatch_generated}/migwatch.8"
    DEPENDS migwatch "${CMAKE_CURRENT_LIST_DIR}/man-help.sh"
    COMMENT "Writing the manual page migwatch.8 from migwatch --help"
    VERBATIM)
  add_custom_target(migwatch_manpage ALL DEPENDS "${_migwatch_generated}/migwatch.8.gz")
  install(FILES "${_migwatch_generated}/migwatch.8.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
endif()

# The default is the project's own address; a build for a
# distribution or a site sets its own: -DMIGWATCH_PACKAGE_MAINTAINER="Name <address>".
set(_migwatch_default_maintainer "migwatch maintainers <maintainers@migwatch.example>")
set(MIGWATCH_PACKAGE_MAINTAINER "${_migwatch_default_maintainer}"
  CACHE STRING "Maintainer field of the Debian package: Name <address>")
# Build trees configured before keep the former default, root@localhost,
# which no package may carry.
if(MIGWATCH_PACKAGE_MAINTAINER STREQUAL "migwatch maintainers <root@localhost>")
  set_property(CACHE MIGWATCH_PACKAGE_MAINTAINER PROPERTY VALUE "${_migwatch_default_maintainer}")
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME migwatch)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# One line per control file line (dpkg wraps nothing); no line may start
# with a dot.
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "migwatch counts task migrations in the kernel with CO-RE eBPF programs and"
  "classifies them by path: wakeup, load balance, affinity, NUMA balancing"
  "and others. It measures the CPU time of the per-CPU migration/N stopper"
  "threads and attributes it to its work and to the process that asked for"
  "it, per host, process and QEMU VM. It serves the results as Prometheus"
  "metrics and ships alerting rules and Grafana dashboards.")
# migwatch_VERSION-REVISION_ARCH.deb and migwatch-dbgsym_..._ARCH.ddeb.
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MIGWATCH_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; deb-systemd-helper is what
# the maintainer scripts run; python3 runs prometheus/generate.py.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.52), python3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus")
# The binary is packaged stripped, its debug information (the default build
# type, RelWithDebInfo, has it; Release has the symbol table only) goes to
# migwatch-dbgsym under /usr/lib/debug/.build-id, which gdb and
# debuginfod find by the binary's build ID; the binary keeps a
# .gnu_debuglink to it too.
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ON)
set(CPACK_PRE_BUILD_SCRIPTS "${CMAKE_CURRENT_LIST_DIR}/debian/strip.cmake")
set(CPACK_POST_BUILD_SCRIPTS "${CMAKE_CURRENT_LIST_DIR}/debian/dbgsym.cmake")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_LIST_DIR}/debian/conffiles"
  "${CMAKE_CURRENT_LIST_DIR}/debian/postinst"
  "${CMAKE_CURRENT_LIST_DIR}/debian/prerm"
  "${CMAKE_CURRENT_LIST_DIR}/debian/postrm")
# 0644 for conffiles, 0755 for the scripts, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
