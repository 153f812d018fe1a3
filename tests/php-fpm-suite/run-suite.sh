#!/bin/bash
# Run php-src 8.2's own FPM test suite (sapi/fpm/tests) against an FPM binary on Debian 12.
# Usage: run-suite.sh WORKDIR [FPM_BINARY]    (default: Debian's /usr/sbin/php-fpm8.2, the reference)
# Needs (as root): apt-get install -y php8.2-cli php8.2-fpm php8.2-dev acl gcc
# The tests come from Debian's php8.2 source package (PHP License), fetched into WORKDIR at run
# time with a private apt configuration (the system's apt state is not touched); nothing of them
# is meant to be committed. The binary is started through a small exec wrapper that adds
# `-n -d extension=posix` (the upstream tests assume built-in ini defaults, e.g. expose_php=On,
# and Debian builds posix as a shared extension) and leaves the environment untouched.
set -e
D=${1:?usage: run-suite.sh WORKDIR [FPM_BINARY]}; FPM=${2:-/usr/sbin/php-fpm8.2}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$D"/apt/parts "$D"/apt/lists/partial "$D"/apt/cache/archives/partial "$D"/src
D=$(cd "$D" && pwd)
case $FPM in /*) ;; *) FPM=$(cd "$(dirname "$FPM")" && pwd)/$(basename "$FPM") ;; esac
# deb-src entry for the same mirror the system already uses for Debian's main archive
URI=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
[ -n "$URI" ] || URI=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$URI" ] || { echo "run-suite: no Debian mirror found in the apt sources" >&2; exit 2; }
cat >"$D"/apt/parts/src.sources <<EOS
Types: deb-src
URIs: $URI
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
APTOPT="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$D/apt/parts -o Dir::State::Lists=$D/apt/lists -o Dir::Cache=$D/apt/cache"
ls "$D"/src/php8.2_*.orig.tar.xz >/dev/null 2>&1 || {
	apt-get $APTOPT update -qq
	(cd "$D"/src && apt-get $APTOPT source --download-only php8.2 >/dev/null 2>&1)
}
TARBALL=$(ls "$D"/src/php8.2_*.orig.tar.xz | head -1)
TOP=$(tar -tJf "$TARBALL" | head -1 | cut -d/ -f1)
rm -rf "$D"/run && mkdir -p "$D"/run
tar -xJf "$TARBALL" -C "$D"/run --strip-components=1 "$TOP/sapi/fpm/tests" "$TOP/ext/standard/tests/misc/browscap.ini"
cp /usr/lib/php/20220829/build/run-tests.php "$D"/run/
gcc -O2 -DTARGET="\"$FPM\"" -o "$D"/run/sapi/fpm/php-fpm "$HERE"/fpm-wrapper.c
cd "$D"/run
if [ "$(id -u)" = 0 ]; then export TEST_FPM_RUN_AS_ROOT=1; fi
timeout 1800 php run-tests.php -P -q --no-color --set-timeout "${SUITE_TEST_TIMEOUT:-60}" ${SUITE_TESTS:-sapi/fpm/tests}
