#!/bin/sh
# Installs what fpmd needs from Debian's packages, only what is missing.
#   scripts/deps.sh build   compiler, make, pkg-config, cmocka
#   scripts/deps.sh test    build + pytest, nginx, cgi-fcgi, php8.2-fpm, clang (fuzzing), chromium (status dashboard),
#                           dpkg-dev + debhelper (the .deb), man-db + groff (man pages), systemd (systemd-analyze), logrotate
#   scripts/deps.sh fuzz    test + AFL++ and the i386 libraries and qemu-user (make fuzz-afl, make fuzz-m32)
#   scripts/deps.sh bench   test + the peers measured by make bench
# Idempotent: a second run installs nothing.  Not root: prints the apt-get line to run.
set -eu

build_pkgs="gcc make pkg-config libcmocka-dev libunwind-dev libphp8.2-embed php8.2-dev php8.2-opcache php8.2-cli"
test_pkgs="python3 acl git python3-pytest strace nginx-light apache2 lighttpd caddy libfcgi-bin php8.2-fpm php8.2-cgi fcgiwrap libfcgi-dev libsqlite3-dev clang libclang-rt-14-dev procps iproute2 valgrind tmux cppcheck chromium dpkg-dev debhelper man-db groff-base systemd logrotate"
fuzz_pkgs="afl++ libc6-dev-i386 lib32gcc-12-dev lib32stdc++-12-dev qemu-user"
bench_pkgs="fcgiwrap spawn-fcgi libfcgi-dev wrk curl gnuplot-nox uwsgi-core uwsgi-plugin-php"

case "${1:-build}" in
	build) want="$build_pkgs" ;;
	test)  want="$build_pkgs $test_pkgs" ;;
	fuzz)  want="$build_pkgs $test_pkgs $fuzz_pkgs" ;;
	bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
	*) echo "usage: $0 build|test|fuzz|bench" >&2; exit 64 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "fpmd: missing Debian packages:$missing" >&2
	echo "fpmd: install them as root: apt-get install -y$missing" >&2
	exit 1
fi

echo "fpmd: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d keeps the packaged daemons (nginx, php-fpm) from being started by apt.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
