#!/bin/sh
# Installs what fpmd needs from Debian's packages, only what is missing.
#   scripts/deps.sh build   compiler, make, pkg-config, cmocka, libunwind, libphp8.2-embed (fpmd-php.so)
#   scripts/deps.sh run     build + what `make run`'s demo pools run (python3 for env.py)
#   scripts/deps.sh apps    build + the real applications from Debian's packages that tests and
#                           make bench run: the Symfony 5.4 example (examples/symfony-worker), DokuWiki
#   scripts/deps.sh test    run + apps + pytest, nginx, apache2, lighttpd, caddy, cgi-fcgi, php8.2-fpm, clang (fuzzing),
#                           chromium (status dashboard), dpkg-dev + debhelper (the .deb), man-db + groff (man pages),
#                           systemd (systemd-analyze), logrotate, git + curl (the doc test), and the image set
#   scripts/deps.sh image   build + mmdebstrap, podman, runc (make image: a Debian-only OCI image; its test)
#   scripts/deps.sh fuzz    test + AFL++ and the i386 libraries and qemu-user (make fuzz-afl, make fuzz-m32)
#   scripts/deps.sh bench   test + the peers measured by make bench
# Idempotent: a second run installs nothing.  Not root: prints the apt-get line to run.
#
# The test set brings daemons (nginx, apache2, lighttpd, caddy, php8.2-fpm, fcgiwrap) that the
# tests start themselves: apt starts none of them (policy-rc.d during the install), and the
# units and init scripts their postinsts enable are disabled again, so the host boots as
# before.  chromium does not stay the default browser either.
set -eu

build_pkgs="gcc make pkg-config libcmocka-dev libunwind-dev libphp8.2-embed php8.2-dev php8.2-opcache php8.2-cli"
run_pkgs="python3"
test_pkgs="python3-pytest php8.2-apcu acl strace nginx-light apache2 lighttpd caddy libfcgi-bin php8.2-fpm php8.2-cgi fcgiwrap libfcgi-dev libsqlite3-dev clang libclang-rt-14-dev procps iproute2 util-linux valgrind tmux cppcheck chromium dpkg-dev debhelper man-db groff-base systemd logrotate git curl"
fuzz_pkgs="afl++ libc6-dev-i386 lib32gcc-12-dev lib32stdc++-12-dev qemu-user"
# podman runs the image with runc: crun fails on cgroup v1 hybrid hosts (docs/kubernetes.md).
image_pkgs="mmdebstrap podman runc uidmap"
# The Symfony example app (examples/symfony-worker) and DokuWiki: real pages, Debian's packages
app_pkgs="php-symfony-framework-bundle php-symfony-runtime php-symfony-twig-bundle php-symfony-yaml php-twig dokuwiki"
bench_pkgs="fcgiwrap spawn-fcgi libfcgi-dev wrk curl gnuplot-nox uwsgi-core uwsgi-plugin-php"

case "${1:-build}" in
	build) want="$build_pkgs" ;;
	run)   want="$build_pkgs $run_pkgs" ;;
	image) want="$build_pkgs $image_pkgs" ;;
	apps)  want="$build_pkgs $app_pkgs" ;;
	test)  want="$build_pkgs $run_pkgs $test_pkgs $image_pkgs $app_pkgs" ;;
	fuzz)  want="$build_pkgs $run_pkgs $test_pkgs $image_pkgs $app_pkgs $fuzz_pkgs" ;;
	bench) want="$build_pkgs $run_pkgs $test_pkgs $image_pkgs $app_pkgs $bench_pkgs" ;;
	*) echo "usage: $0 build|run|apps|test|image|fuzz|bench" >&2; exit 64 ;;
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
state=$(mktemp -d)
cleanup() {
	rm -rf "$state"
	[ -z "${own_policy:-}" ] || rm -f /usr/sbin/policy-rc.d
}
trap cleanup EXIT
# policy-rc.d keeps the packaged daemons from being started by apt (invoke-rc.d and
# deb-systemd-invoke ask it).  An existing one is the admin's: left as it is.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	own_policy=1
fi

# What is enabled at boot, and the default browser, before the install.
enabled_links() {
	find /etc/systemd/system /etc/rc0.d /etc/rc1.d /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d \
	    /etc/rc6.d /etc/rcS.d -type l 2>/dev/null | sort
}
browsers="x-www-browser gnome-www-browser"
alternative() {
	update-alternatives --query "$1" 2>/dev/null | sed -n 's/^Value: //p'
}
enabled_links > "$state/before"
for b in $browsers; do alternative "$b" > "$state/$b"; done

# Another apt-get at work (unattended-upgrades, a provisioning script) holds dpkg's
# lock: wait for it, as long as a slow install takes, rather than fail at once.
lock_wait="-o DPkg::Lock::Timeout=600"
# shellcheck disable=SC2086
apt-get $lock_wait update -qq || true
# shellcheck disable=SC2086
apt-get $lock_wait install -y -qq --no-install-recommends $missing

# Units the postinsts enabled, disabled as an admin would: deb-systemd-helper sees the
# links gone and a later upgrade of the package leaves them so.
enabled_links | comm -13 "$state/before" - > "$state/new"
units=$(grep '^/etc/systemd/system/' "$state/new" | sed 's|.*/||' | sort -u || true)
for u in $units; do
	systemctl disable "$u" >/dev/null 2>&1 || true
done
scripts=$(grep '^/etc/rc' "$state/new" | sed 's|.*/[SK][0-9][0-9]||' | sort -u || true)
for s in $scripts; do
	update-rc.d "$s" disable >/dev/null 2>&1 || true
done
# Whatever is left of the new links goes too.
enabled_links | comm -13 "$state/before" - | grep '^/etc/systemd/system/' | while read -r l; do
	rm -f "$l"
done
[ -z "$units$scripts" ] || echo "fpmd: left disabled at boot, as before the install:" $units $scripts

for b in $browsers; do
	was=$(cat "$state/$b")
	now=$(alternative "$b")
	[ "$now" != "$was" ] || continue
	if [ -n "$was" ]; then
		update-alternatives --quiet --set "$b" "$was"
	else
		update-alternatives --quiet --remove-all "$b"
	fi
	echo "fpmd: $b left as before the install (${was:-none})"
done
