#!/bin/bash
# System calls and instructions per request of an fpmd php pool: the two counts this
# noisy machine does not change (docs/performance.md, "Reproducing the profile").
#   bench/php-profile.sh BUILD [SCRIPT]      SCRIPT: /hello.php (default) or /table.php
# strace -c over 2,000 requests (2 workers, c=8), then callgrind over 1,000 requests
# (1 worker, after 200 to warm up).  Needs BUILD/bench/fcgi-load (bench/run.sh builds
# it), strace and valgrind.  Runs as root with -R, like bench/run.sh.
set -u
B=$(cd "${1:?usage: php-profile.sh BUILD [SCRIPT]}" && pwd)
SCRIPT=${2:-/hello.php}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOAD=$B/bench/fcgi-load
D=$(mktemp -d /tmp/fpmd-php-profile.XXXXXX)
chmod 755 "$D"
mkdir "$D/www"
cp "$ROOT/bench/php/hello.php" "$ROOT/bench/php/table.php" "$D/www/"
touch -d '1 minute ago' "$D"/www/*    # opcache.file_update_protection
M=""
cleanup() { [ -n "$M" ] && kill -KILL -- "-$M" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
conf() {
	cat > "$D/fpmd.conf" <<EOC
[global]
pid = $D/fpmd.pid
error_log = $D/error.log

[bench]
listen = $D/sock
pm = static
pm.max_children = $1
app.type = php
EOC
}
wait_sock() { for _ in $(seq 60); do [ -S "$D/sock" ] && return 0; sleep 1; done; return 1; }

# --- strace: 2 workers
conf 2
setsid "$B/fpmd" -F -R -y "$D/fpmd.conf" >"$D/out.log" 2>&1 </dev/null &
M=$!
wait_sock || { echo "fpmd did not start: $(cat "$D/out.log")"; exit 1; }
"$LOAD" -c 8 -n 400 -r "$D/www" "unix:$D/sock" "$SCRIPT" >/dev/null
args=""
for w in $(ps -o pid=,args= --ppid "$M" | awk '$0 !~ /zygote/ {print $1}'); do args="$args -p $w"; done
# shellcheck disable=SC2086
strace -c -f -o "$D/strace.txt" $args &
S=$!
sleep 1
"$LOAD" -c 8 -n 2000 -r "$D/www" "unix:$D/sock" "$SCRIPT" >/dev/null
sleep 0.5
kill -INT $S
wait $S
kill -TERM -- "-$M"
wait "$M" 2>/dev/null
M=""
rm -f "$D/sock"
awk 'NR > 2 && $NF != "total" && $1 !~ /^-/ && $4 ~ /^[0-9]+$/ { printf "%s %.2f\n", $NF, $4 / 2000 }' \
	"$D/strace.txt" | sort -k2 -nr > "$D/per-req.txt"
echo "system calls per request: $(awk '{ s += $2 } END { print s }' "$D/per-req.txt")"
tr '\n' ' ' < "$D/per-req.txt"
echo

# --- callgrind: 1 worker, followed into the zygote's clone
conf 1
cd "$D" || exit 1
setsid valgrind --tool=callgrind --trace-children=yes "$B/fpmd" -F -R -y "$D/fpmd.conf" \
	>"$D/vg.log" 2>&1 </dev/null &
M=$!
wait_sock || { echo "fpmd under valgrind did not start"; exit 1; }
sleep 8
"$LOAD" -c 1 -n 200 -r "$D/www" "unix:$D/sock" "$SCRIPT" >/dev/null
W=$(ps -o pid= -s "$M" | sort -n | tail -1 | tr -d ' ')    # the newest: the worker
callgrind_control -z "$W" >/dev/null
"$LOAD" -c 1 -n 1000 -r "$D/www" "unix:$D/sock" "$SCRIPT" >/dev/null
callgrind_control -d "$W" >/dev/null
sleep 1
F=$D/callgrind.out.$W.1    # the first dump
ir=$(callgrind_annotate "$F" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
echo "instructions per request: $((ir / 1000))"
callgrind_annotate --inclusive=yes "$F" 2>/dev/null | grep -E "fpmd|fcgi_|php_request|php_execute|memset" | head -25
