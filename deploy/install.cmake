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

set(MIGWATCH_PACKAGE_MAINTAINER "migwatch maintainers <root@localhost>"
  CACHE STRING "Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME migwatch)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# One line per control file line (dpkg wraps nothing).
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "migwatch counts task migrations in the kernel with CO-RE eBPF programs,"
  "classifies them by path (wakeup, load balance, affinity, NUMA balancing,"
  "...), measures the CPU time of the per-CPU migration/N stopper threads and"
  "attributes it to its work and to the process that asked for it, per host,"
  "process and QEMU VM. It serves the results as Prometheus metrics and ships"
  "alerting rules and Grafana dashboards.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MIGWATCH_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; deb-systemd-helper is what
# the maintainer scripts run.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.52)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "prometheus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${CMAKE_CURRENT_LIST_DIR}/debian/conffiles"
  "${CMAKE_CURRENT_LIST_DIR}/debian/postinst"
  "${CMAKE_CURRENT_LIST_DIR}/debian/prerm"
  "${CMAKE_CURRENT_LIST_DIR}/debian/postrm")
# 0644 for conffiles, 0755 for the scripts, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
