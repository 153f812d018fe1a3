#!/bin/sh
# Runs php-src's FPM test suite against fpmd and compares with php-fpm8.2's results.
#   scripts/php-fpm-suite.sh FPMD_BINARY WORKDIR
# As root: the tests run as root (TEST_FPM_RUN_AS_ROOT=1), then as nobody.
set -u
fpmd=${1:?usage: php-fpm-suite.sh FPMD_BINARY WORKDIR}
dir=${2:?usage: php-fpm-suite.sh FPMD_BINARY WORKDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
suite=$top/tests/php-fpm-suite
mkdir -p "$dir"
rc=0
bash "$suite/run-suite.sh" "$dir/root" "$fpmd" > "$dir/root.log" 2>&1
"$suite/compare.py" "$dir/root.log" root > "$dir/root.txt" || rc=1
tail -2 "$dir/root.txt"
if [ "$(id -u)" = 0 ] && [ "${SUITE_NOBODY:-1}" = 1 ]; then
	# A tree nobody owns, as php-src's tests write next to themselves.
	rm -rf "$dir/nobody"
	mkdir -p "$dir/nobody"
	cp -r "$dir/root/src" "$dir/nobody/" 2>/dev/null
	chown -R nobody:nogroup "$dir/nobody"
	chmod o+x "$dir" "$(dirname "$fpmd")"
	setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
		bash "$suite/run-suite.sh" "$dir/nobody" "$fpmd" > "$dir/nobody.log" 2>&1
	"$suite/compare.py" "$dir/nobody.log" nobody > "$dir/nobody.txt" || rc=1
	tail -2 "$dir/nobody.txt"
fi
echo "details: $dir/root.txt $dir/nobody.txt"
exit $rc
