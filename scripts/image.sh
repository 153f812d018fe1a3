#!/bin/sh
# make image: fpmd's container image from Debian's packages only, offline but for the
# Debian mirror.
#
#   1. a bookworm root file system: mmdebstrap --variant=minbase with the PHP runtime a
#      php-fpm image has (libphp8.2-embed and the usual extensions), the mirrors of
#      /etc/apt/sources.list.d/debian.sources, the fpmd user (10001); docs, man pages and
#      apt's lists left out; /etc/php/8.2/fpm (where fpmd reads php.ini and conf.d, as
#      php-fpm does): php.ini-production and the extensions the packages enabled
#   2. podman import → localhost/fpmd-base:<hash of the package list>
#   3. podman build (contrib/container/Containerfile): `make install PREFIX=/usr` on top;
#      COPY only, so no container runs during the build
#
# Cached by content: the base by its package list, the image by a hash of the sources, both
# in podman's storage (outside the tree), so a second run with nothing changed only checks.
# Environment: IMAGE (default localhost/fpmd:latest), FPMD_IMAGE_CACHE (a directory outside
# the tree for the root file system tarball; default /var/tmp/fpmd-image).
# Needs root and scripts/deps.sh image (mmdebstrap, podman, runc).
set -eu

IMAGE=${IMAGE:-localhost/fpmd:latest}
CACHE=${FPMD_IMAGE_CACHE:-/var/tmp/fpmd-image}
SOURCES=${FPMD_IMAGE_SOURCES:-/etc/apt/sources.list.d/debian.sources}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# What php:8.2-fpm has compiled in, as Debian's packages: the core, opcache, curl, xml (dom,
# simplexml, xmlreader, xmlwriter), mbstring, sqlite3 + pdo_sqlite, mysqlnd + pdo_mysql;
# libunwind8 for fpmd's slowlog traces; ca-certificates for curl/openssl.
PKGS="libphp8.2-embed php8.2-opcache php8.2-curl php8.2-xml php8.2-mbstring php8.2-sqlite3 php8.2-mysql libunwind8 ca-certificates tzdata"

hash_of() { sha256sum | cut -c1-16; }
base_hash=$(printf '%s\n' "$PKGS" "$(cat "$SOURCES")" "$(sed -n '/^[[:space:]]*# rootfs$/,/^[[:space:]]*# end rootfs$/p' "$0")" | hash_of)
src_hash=$( (find src include contrib/container docs/man contrib/fpmd.conf examples/fpmd.conf Makefile scripts/image.sh \
	-type f -print0 | sort -z | xargs -0 sha256sum; echo "$base_hash") | hash_of)

if [ "$(podman image inspect --format '{{index .Labels "org.fpmd.source"}}' "$IMAGE" 2>/dev/null || true)" = "$src_hash" ]; then
	echo "fpmd: $IMAGE is up to date (sources $src_hash)"
	exit 0
fi

mkdir -p "$CACHE"
base=localhost/fpmd-base:$base_hash
if ! podman image exists "$base"; then
	tar="$CACHE/rootfs-$base_hash.tar"
	if [ ! -s "$tar" ]; then
		echo "fpmd: mmdebstrap: bookworm minbase + $PKGS"
		# The hooks' $1 is the root file system, expanded by mmdebstrap's shell, not this one.
		# shellcheck disable=SC2016
		# rootfs
		mmdebstrap --variant=minbase --mode=root --format=tar \
			--include="$(echo "$PKGS" | tr ' ' ',')" \
			--dpkgopt='path-exclude=/usr/share/man/*' \
			--dpkgopt='path-exclude=/usr/share/locale/*' \
			--dpkgopt='path-exclude=/usr/share/doc/*' \
			--dpkgopt='path-include=/usr/share/doc/*/copyright' \
			--dpkgopt='path-exclude=/usr/share/info/*' \
			--customize-hook='echo "fpmd:x:10001:10001:fpmd:/srv/www:/usr/sbin/nologin" >> "$1/etc/passwd"' \
			--customize-hook='echo "fpmd:x:10001:" >> "$1/etc/group"' \
			--customize-hook='echo "fpmd:!:19000::::::" >> "$1/etc/shadow"' \
			--customize-hook='mkdir -p "$1/run/fpmd" "$1/srv/www" && chown 10001:10001 "$1/run/fpmd"' \
			--customize-hook='mkdir "$1/etc/php/8.2/fpm" && cp "$1/usr/lib/php/8.2/php.ini-production" "$1/etc/php/8.2/fpm/php.ini" && cp -a "$1/etc/php/8.2/cli/conf.d" "$1/etc/php/8.2/fpm/"' \
			--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log' \
			bookworm "$tar.tmp" "$SOURCES"
		# end rootfs
		mv "$tar.tmp" "$tar"
	fi
	podman import --change 'CMD ["/bin/sh"]' "$tar" "$base" >/dev/null
	rm -f "$tar"
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# PREFIX=/usr: /usr/sbin/fpmd, /usr/lib/fpmd/fpmd-php.so, /etc/fpmd.
# Not the caller's make flags: `make test SAN=1` would put a sanitizer build in the image.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install PREFIX=/usr SAN= DESTDIR="$ctx/root" >/dev/null
rm -rf "$ctx/root/usr/include" "$ctx/root/usr/share/pkgconfig" "$ctx/root/lib" "$ctx/root/usr/lib/systemd" \
	"$ctx/root/etc/fpmd/fpmd.conf"
cp contrib/container/fpmd.conf "$ctx/fpmd.conf"
mkdir -m 0750 "$ctx/state"
podman build -q --format docker --network none --pull=never --build-arg BASE="$base" \
	--label org.fpmd.source="$src_hash" -t "$IMAGE" -f contrib/container/Containerfile "$ctx" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "fpmd: built $IMAGE ($((size / 1000000)) MB; sources $src_hash)"
