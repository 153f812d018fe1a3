#!/bin/sh
# Runs each cmocka unit-test binary and prints one summary line over all of them.
# Exits non-zero if any binary failed.
passed=0; failed=0; bad=""
for t in "$@"; do
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
	f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	if [ $rc -ne 0 ]; then
		[ -z "$f" ] && failed=$((failed + 1))
		bad="$bad $(basename "$t")"
	fi
done
echo "unit: $passed passed, $failed failed"
[ -z "$bad" ] || { echo "failing unit binaries:$bad" >&2; exit 1; }
