#!/bin/sh
# The layers of src/, checked on every #include "…" (make check-layers, run by make test):
#  - nothing outside src/master/ includes a master/ header: workers, handlers,
#    zygotes and fpmd-php.so see a pool through pool/pool.h, never the
#    master's own part of it;
#  - the pure modules (no I/O: unit-tested and fuzzed) include only pure
#    modules' headers.
# Prints each offending line and exits 1; prints one line and exits 0 when clean.
set -eu
cd "$(dirname "$0")/.."
PURE_DIRS="src/buf src/fcgi src/conf src/status src/cgi src/pathinfo src/pm"
PURE_FILES="src/log/access_format.c src/log/access_format.h"
PURE_HEADERS='^(buf|fcgi|conf|status|cgi|pathinfo|pm)/|^log/access_format\.h$'
bad=0
for f in $(find src -name '*.[ch]' | sort); do
	case "$f" in src/master/*) continue ;; esac
	if grep -n '#include "master/' "$f" >/dev/null; then
		grep -n '#include "master/' "$f" | sed "s|^|$f:|; s|\$|  <- outside src/master/: use pool/pool.h|"
		bad=1
	fi
done
for f in $(find $PURE_DIRS -name '*.[ch]' | sort) $PURE_FILES; do
	grep -n '#include "' "$f" | while IFS= read -r line; do
		h=$(printf '%s\n' "$line" | sed 's/.*#include "\([^"]*\)".*/\1/')
		if ! printf '%s\n' "$h" | grep -Eq "$PURE_HEADERS"; then
			echo "$f:$line  <- a pure module includes the process layer ($h)"
			echo x >> "${TMPDIR:-/tmp}/check-layers.$$"
		fi
	done
done
if [ -e "${TMPDIR:-/tmp}/check-layers.$$" ]; then
	rm -f "${TMPDIR:-/tmp}/check-layers.$$"
	bad=1
fi
if [ "$bad" -ne 0 ]; then
	echo "check-layers: the includes above cross a layer (see scripts/check-layers.sh)"
	exit 1
fi
echo "check-layers: no include from outside src/master/ into it; pure modules include only pure ones"
