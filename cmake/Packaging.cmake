# The .deb, through CPack: `cpack -G DEB` in a build directory (CI does it after the tests).
#
# Layout (prefix /usr): the binaries in /usr/bin; daybreak-job, daybreak-nightly and
# daybreak-watchdog in /usr/libexec/daybreak; man pages in /usr/share/man/man1; the example
# configuration in /usr/share/doc/daybreak; the crontab in /usr/share/daybreak (not
# /etc/cron.d: a package that starts sending WhatsApp messages on install, before anyone wrote a
# configuration, would surprise; `crontab -u daybreak /usr/share/daybreak/daybreak.crontab`
# turns it on); the logrotate file in /etc/logrotate.d (a conffile); the systemd units in
# /usr/lib/systemd/system, not enabled. postinst creates the daybreak system user and
# /var/lib/daybreak, /var/log/daybreak and /etc/daybreak.
set(CPACK_PACKAGE_NAME daybreak)
set(CPACK_PACKAGE_VENDOR "daybreak maintainers")
set(CPACK_PACKAGE_CONTACT "daybreak maintainers <maintainers@daybreak.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "morning content delivery to financial advisors over WhatsApp, with an SLA")
# One string (several quoted arguments would make a CMake list, joined with ";").
set(CPACK_PACKAGE_DESCRIPTION "daybreak delivers one piece of content to every opted-in advisor each morning and \
proves it did: cron-driven batch tools around one SQLite ledger (assign-fallback, plan-deliveries, dispatch, \
sla-report), the operator tool `daybreak`, and a provider simulator.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_NAME daybreak)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # daybreak_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies computed by dpkg-shlibdeps (dpkg-dev) from the binaries; the rest by hand:
# tzdata for the zones, util-linux for flock and setsid in the wrappers, passwd for useradd.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "tzdata, util-linux, passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate, cron | systemd-sysv, sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/deb/postinst
    ${CMAKE_CURRENT_LIST_DIR}/deb/postrm
    ${CMAKE_CURRENT_LIST_DIR}/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# gzip, not the default xz: a few MB larger, several times faster to build in CI and tests.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)

include(CPack)
