#!/bin/sh
# make bench: fpmd side by side with its peers, in one run, on this machine.
#
#   bench/run.sh [BUILD]        BUILD holds fpmd (default build/)
#
# Every server gets its own config in a temp dir, a unix socket and the same
# number of worker processes (2, then 8).  The servers of a scenario run in
# turn, A B C A B C ..., ROUNDS times; bench/report.py prints medians, the
# min-max spread and fpmd's ratio to each peer, and writes
# bench/results/latest.json.  Installs nothing: scripts/deps.sh bench does.
#
# Environment:
#   BENCH_QUICK=1         smoke test: 1 s runs, 1 round
#   BENCH_SECS=2          seconds per measurement
#   BENCH_ROUNDS=3        rounds
#   BENCH_CONNS           connections in flight (fcgi-load -c, wrk -c), one
#                         number or a list ("8 64") for every scenario; unset,
#                         each scenario has its own: hello "8 64", hello-ka 8,
#                         nginx 64, the others 16
#   BENCH_WORKERS         worker counts; unset: "2 8", the php scenario (php-cgi
#                         in exec pools, a report without goal) 2 only
#   BENCH_SCENARIOS="cgi-sh cgi-c php php-hello php-table hello hello-ka nginx ondemand-ramp dynamic-burst recycle reload idle ondemand-first density memory recycle-cost symfony dokuwiki"
#                         (ping and ping-ka also exist, out of the default list:
#                         hello and hello-ka measure the same path through a module)
#                         php-hello/php-table: PHP pools (app.type = php) against
#                         php-fpm8.2 and uWSGI's php plugin, plus bench/php.py's
#                         worker CPU per request, PSS by process and opcache sharing
#                         hello/hello-ka: a module pool (examples/modules/hello.c)
#                         against prefork, spawn-fcgi + libfcgi and php-fpm8.2
#                         nginx: nginx-light + wrk in front of fpmd (module and
#                         php pools) and php-fpm8.2
#   BENCH_PHP_REQS=10000  requests of php.py's CPU measurement
#                         the process-manager ones (ondemand-ramp ... memory) are
#                         run by bench/pm.py, after the others; symfony and
#                         dokuwiki (real applications from Debian's packages, and
#                         php.worker) by bench/apps.py, last
#   BENCH_APPS_REQS=2000  requests of apps.py's CPU measurement
#   CC=cc
#   PYTHON                the helpers' interpreter: /usr/bin/python3 when there
#                         (a pyenv shim costs a second per call, and run.sh calls
#                         report.py after every measurement)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
SECS=${BENCH_SECS:-2}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-}
WORKERS=${BENCH_WORKERS:-}
SCENARIOS=${BENCH_SCENARIOS:-cgi-sh cgi-c php php-hello php-table hello hello-ka nginx ondemand-ramp dynamic-burst recycle reload idle ondemand-first density memory recycle-cost symfony dokuwiki}
PHP_REQS=${BENCH_PHP_REQS:-10000}
WARMUP=0.3
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	SECS=1
	ROUNDS=1
	WARMUP=0.2
	PHP_REQS=${BENCH_PHP_REQS:-5000}
fi
CC=${CC:-cc}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
	PY=python3
	[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fi
FPMD=$BUILD/fpmd
BIN=$BUILD/bench
LOAD=$BIN/fcgi-load
RESULTS=$ROOT/bench/results

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

[ -x "$FPMD" ] || die "$FPMD not built (make all)"

# throughput scenarios run here; process-manager ones by bench/pm.py
THRU=""
PMSCEN=""
APPSCEN=""
for scen in $SCENARIOS; do
	case "$scen" in
	ping|ping-ka|cgi-sh|cgi-c|php|php-hello|php-table|hello|hello-ka|nginx) THRU="$THRU $scen" ;;
	ondemand-ramp|dynamic-burst|recycle|reload|idle|ondemand-first|density|memory|recycle-cost) PMSCEN="$PMSCEN $scen" ;;
	symfony|dokuwiki) APPSCEN="$APPSCEN $scen" ;;
	*) die "unknown scenario '$scen'" ;;
	esac
done

# --- every process group this script starts dies with it ------------------
# A server's process groups are written to its DIR/pgids the moment it is
# started; stop_all (after each set of runs, and on any exit: end, failure,
# Ctrl-C) sends TERM to each group, then KILL to what is left after 2 s.
TMP=""
PMPID=""
cleanup() {
	trap - EXIT INT TERM
	# bench/pm.py, when it runs, stops its own servers on TERM
	if [ -n "$PMPID" ]; then
		kill -TERM "$PMPID" 2>/dev/null || true
		wait "$PMPID" 2>/dev/null || true
	fi
	stop_all
	# the cgroups bench/pm.py counts each server's CPU in (empty once it stopped)
	for cg in /sys/fs/cgroup/fpmd-bench-* /sys/fs/cgroup/cpuacct/fpmd-bench-*; do
		[ -d "$cg" ] && rmdir "$cg" 2>/dev/null || true
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
}
stop_all() {
	[ -n "$TMP" ] || return 0
	groups=$(awk '{ print }' "$TMP"/*/*/pgids 2>/dev/null || true)
	[ -n "$groups" ] || return 0
	for g in $groups; do kill -TERM "-$g" 2>/dev/null || true; done
	i=0
	while [ $i -lt 20 ]; do
		alive=""
		for g in $groups; do kill -0 "-$g" 2>/dev/null && alive="$alive $g"; done
		[ -z "$alive" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	for g in $groups; do kill -KILL "-$g" 2>/dev/null || true; done
	rm -f "$TMP"/*/*/pgids
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d /tmp/fpmd-bench.XXXXXX)
chmod 755 "$TMP"
RAW=$TMP/raw.jsonl
: > "$RAW"

# --- build the load generator, the apps and the CGI programs -------------
mkdir -p "$BIN"
CFLAGS_BENCH="-std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -D_GNU_SOURCE -I$ROOT/src"
FCGI_SRC="$ROOT/src/fcgi/fcgi_nv.c $ROOT/src/fcgi/fcgi_parser.c $ROOT/src/fcgi/fcgi_record.c \
$ROOT/src/fcgi/fcgi_resp.c"
say "bench: building fcgi-load, prefork, hello-fcgi, hello.cgi, hello.so into $BIN"
# shellcheck disable=SC2086
$CC $CFLAGS_BENCH -o "$LOAD" "$ROOT/bench/fcgi-load.c" $FCGI_SRC
# shellcheck disable=SC2086
$CC $CFLAGS_BENCH -o "$BIN/prefork" "$ROOT/bench/apps/prefork.c" $FCGI_SRC
# shellcheck disable=SC2086
$CC $CFLAGS_BENCH -o "$BIN/hello.cgi" "$ROOT/bench/cgi/hello.c"
# the module pool's handler, as examples/modules/Makefile builds it
$CC -O2 -g -Wall -Wextra -Werror -I"$ROOT/include" -shared -fPIC -o "$BIN/hello.so" \
	"$ROOT/examples/modules/hello.c"
HAVE_LIBFCGI=0
# shellcheck disable=SC2086
if $CC $CFLAGS_BENCH -o "$BIN/hello-fcgi" "$ROOT/bench/apps/hello-fcgi.c" -lfcgi 2>"$TMP/libfcgi.err"; then
	HAVE_LIBFCGI=1
else
	say "bench: libfcgi-dev missing, the libfcgi peer is skipped ($(head -1 "$TMP/libfcgi.err"))"
fi

WWW=$TMP/www
mkdir -p "$WWW"
cp "$ROOT/bench/cgi/hello.sh" "$ROOT/bench/cgi/sleep.sh" "$BIN/hello.cgi" \
	"$ROOT/bench/php/hello.php" "$ROOT/bench/php/sleep.php" "$ROOT/bench/php/sleep1.php" "$ROOT/bench/php/table.php" \
	"$ROOT/bench/php/opcache.php" "$ROOT/bench/php/memory.php" "$ROOT/bench/php/memory-heavy.php" "$WWW/"
chmod 755 "$WWW" "$WWW/hello.sh" "$WWW/sleep.sh" "$WWW/hello.cgi"
# opcache does not cache a file modified in the last 2 s
# (opcache.file_update_protection): the first server would compile every request
touch -d '1 minute ago' "$WWW"/*

AS_ROOT=""
[ "$(id -u)" -eq 0 ] && AS_ROOT=-R

have() { command -v "$1" >/dev/null 2>&1; }
PHPFPM=$(command -v php-fpm8.2 || command -v php-fpm || true)
PHPCGI=$(command -v php-cgi8.2 || command -v php-cgi || true)
PHPINI_DIR=/etc/php/8.2/fpm
HAVE_UWSGI_PHP=0
have uwsgi && [ -f /usr/lib/uwsgi/plugins/php_plugin.so ] && HAVE_UWSGI_PHP=1

# --- servers ----------------------------------------------------------------
# start_SERVER DIR WORKERS: starts the server in DIR on the socket DIR/sock
# with WORKERS worker processes and records its process groups in
# DIR/pgids.  Each runs as the invoking user (with -R when that is root).

# setsid in a non-interactive shell does not fork: the pid is the group id.
spawn() {
	dir=$1
	shift
	setsid "$@" >"$dir/out.log" 2>&1 </dev/null &
	echo $! >> "$dir/pgids"
}

start_fpmd() {
	# the php scenario: php-cgi in an exec pool, relayed by each worker
	app="app.type = cgi
cgi.root = $WWW
ping.path = /ping"
	[ "$scen" = php ] && app="app.type = exec
exec.command = $PHPCGI"
	# php-hello, php-table: PHP in the workers, Debian's fpm php.ini (the default)
	case "$scen" in php-*) app="app.type = php" ;; esac
	# hello, hello-ka, nginx: the benchmark handler in a module pool
	case "$scen" in hello*|nginx) app="app.type = module
module.path = $BIN/hello.so" ;; esac
	[ "${3:-}" = php ] && app="app.type = php"
	[ "${3:-}" = direct ] && app="app.type = exec
exec.mode = direct
exec.command = $PHPCGI"
	cat > "$1/fpmd.conf" <<EOF
[global]
pid = $1/fpmd.pid
error_log = $1/error.log

[bench]
listen = $1/sock
pm = static
pm.max_children = $2
$app
EOF
	spawn "$1" "$FPMD" -F -y "$1/fpmd.conf" $AS_ROOT
}

# nginx's second fpmd: hello.php in a PHP pool
start_fpmd_php() {
	start_fpmd "$1" "$2" php
}

# php-cgi accepting on the pool socket itself, the workers only supervising it.
start_fpmd_direct() {
	start_fpmd "$1" "$2" direct
}

# php-cgi the classic way: N processes forked by spawn-fcgi, never restarted
# (so no PHP_FCGI_MAX_REQUESTS, which would let them die one by one).
start_spawn_php() {
	PHP_FCGI_CHILDREN=0 PHP_FCGI_MAX_REQUESTS=0 setsid spawn-fcgi -F "$2" -s "$1/sock" \
		-P "$1/pgids" -- "$PHPCGI" >"$1/out.log" 2>&1 </dev/null
}

start_php_fpm() {
	cat > "$1/php-fpm.conf" <<EOF
[global]
pid = $1/php-fpm.pid
error_log = $1/error.log
daemonize = no

[bench]
listen = $1/sock
pm = static
pm.max_children = $2
ping.path = /ping
EOF
	spawn "$1" "$PHPFPM" -F -y "$1/php-fpm.conf" -p "$1" $AS_ROOT
}

# uWSGI's php plugin, the same libphp8.2: 2 workers under a master.  It reads
# only the php.ini it is given, so the fpm conf.d files (opcache and the other
# extensions php-fpm and fpmd load) are appended; no request log.  TERM
# reloads uWSGI unless --die-on-term: stop_all's TERM must stop it.
start_uwsgi() {
	set -- "$1" "$2"
	ini=""
	for f in "$PHPINI_DIR"/conf.d/*.ini; do ini="$ini --php-ini-append $f"; done
	# shellcheck disable=SC2086
	spawn "$1" uwsgi --plugin 0:php --fastcgi-socket "$1/sock" --processes "$2" --master \
		--die-on-term --disable-logging --php-docroot "$WWW" --php-ini "$PHPINI_DIR/php.ini" $ini
}

start_fcgiwrap() {
	spawn "$1" fcgiwrap -c "$2" -s "unix:$1/sock"
}

start_prefork() {
	spawn "$1" "$BIN/prefork" -s "$1/sock" -n "$2"
}

# spawn-fcgi forks the children, each in its own session, and exits.
start_libfcgi() {
	setsid spawn-fcgi -F "$2" -s "$1/sock" -P "$1/pgids" -- "$BIN/hello-fcgi" \
		>"$1/out.log" 2>&1 </dev/null
}

# nginx in front of the server in DIR (its socket DIR/sock), on a free
# loopback port written to DIR/port: one worker process under a master, the
# config, pid and logs in DIR/nginx, no access log.  Its process group joins
# DIR/pgids.
start_nginx_front() {
	nd=$1/nginx
	mkdir -p "$nd"
	port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	echo "$port" > "$1/port"
	user=""
	[ "$(id -u)" -eq 0 ] && user="user root;"
	cat > "$nd/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 1;
pid $nd/nginx.pid;
error_log $nd/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $nd/body;
	proxy_temp_path $nd/proxy;
	fastcgi_temp_path $nd/fastcgi;
	uwsgi_temp_path $nd/uwsgi;
	scgi_temp_path $nd/scgi;
	server {
		listen 127.0.0.1:$port;
		root $WWW;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
			fastcgi_pass unix:$1/sock;
		}
	}
}
EOF
	setsid nginx -p "$nd" -c "$nd/nginx.conf" >"$nd/out.log" 2>&1 </dev/null &
	echo $! >> "$1/pgids"
}

# nginx answers over HTTP with the page, for up to 10 s: ready.
wait_http() {
	i=0
	while [ $i -lt 100 ]; do
		curl -fsS -m 2 "$1" 2>/dev/null | grep -q "$2" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Worker counts of a scenario: BENCH_WORKERS for all, else its own.
workers_for() {
	if [ -n "$WORKERS" ]; then echo "$WORKERS"; return 0; fi
	case "$1" in
	# php-cgi, a report without goal: 2 workers keep make bench under 15 min
	php) echo 2 ;;
	*) echo "2 8" ;;
	esac
}

# Connection counts of a scenario: BENCH_CONNS for all, else its own.
conns_for() {
	if [ -n "$CONNS" ]; then echo "$CONNS"; return 0; fi
	case "$1" in
	hello) echo "8 64" ;;
	# keep-alive: a process-per-connection server (prefork, libfcgi,
	# php-fpm, fpmd) serves one kept connection per worker; the others wait
	hello-ka) echo 8 ;;
	nginx) echo 64 ;;
	*) echo 16 ;;
	esac
}

# One measurement, JSON on stdout: fcgi-load on the socket, or, for nginx,
# wrk over HTTP (its report turned into fcgi-load's JSON by report.py).
measure() { # SCEN SRV DIR CONNS SECS URI EXPECT
	if [ "$1" = nginx ]; then
		wrk -t1 -c "$4" -d "${5%.*}s" --latency "http://127.0.0.1:$(cat "$3/port")$6" \
			> "$3/wrk.out" 2>&1 || return 1
		$PY "$ROOT/bench/report.py" wrk "$3/wrk.out" "$4"
		return
	fi
	KA=""
	case "$1" in *-ka) KA=-k ;; esac
	XA=$(load_args "$2" "$6")
	# shellcheck disable=SC2086
	"$LOAD" -j -c "$4" -d "$5" $KA -r "$WWW" -e "$7" $XA "unix:$3/sock" "$6"
}

# What each server is asked in each scenario: "URI EXPECT".
request_for() {
	case "$1:$2" in
	ping*:fpmd|ping*:php-fpm) echo "/ping pong" ;;
	hello*:*|nginx:*)         echo "/hello.php Hello" ;;
	ping*:*)                  echo "/hello Hello" ;;
	cgi-sh:*)                 echo "/hello.sh Hello" ;;
	cgi-c:*)                  echo "/hello.cgi Hello" ;;
	php:*|php-hello:*)        echo "/hello.php Hello" ;;
	php-table:*)              echo "/table.php </table>" ;;
	esac
}

servers_for() {
	case "$1" in
	ping|ping-ka)
		s=fpmd
		if [ -n "$PHPFPM" ]; then s="$s php-fpm"
		else say "bench: php-fpm8.2 missing, skipped"; fi
		if [ $HAVE_LIBFCGI = 1 ] && have spawn-fcgi; then s="$s libfcgi"
		else say "bench: spawn-fcgi or libfcgi missing, skipped"; fi
		echo "$s prefork" ;;
	hello|hello-ka)
		s="fpmd prefork"
		if [ $HAVE_LIBFCGI = 1 ] && have spawn-fcgi; then s="$s libfcgi"
		else say "bench: spawn-fcgi or libfcgi missing, skipped"; fi
		if [ -n "$PHPFPM" ]; then s="$s php-fpm"
		else say "bench: php-fpm8.2 missing, skipped"; fi
		echo "$s" ;;
	nginx)
		if ! have nginx || ! have wrk || ! have curl; then
			say "bench: nginx, wrk or curl missing, nginx skipped"
			return 0
		fi
		s=fpmd
		if [ -f "$BUILD/fpmd-php.so" ]; then s="$s fpmd-php"
		else say "bench: $BUILD/fpmd-php.so not built, fpmd-php skipped"; fi
		if [ -n "$PHPFPM" ]; then s="$s php-fpm"
		else say "bench: php-fpm8.2 missing, skipped"; fi
		echo "$s" ;;
	cgi-sh|cgi-c)
		if have fcgiwrap; then echo "fpmd fcgiwrap"
		else say "bench: fcgiwrap missing, skipped"; echo fpmd; fi ;;
	php)
		[ -n "$PHPCGI" ] || { say "bench: php-cgi missing, php skipped"; return 0; }
		s="fpmd fpmd-direct"
		if [ -n "$PHPFPM" ]; then s="$s php-fpm"
		else say "bench: php-fpm8.2 missing, skipped"; fi
		if have spawn-fcgi; then s="$s spawn-php"
		else say "bench: spawn-fcgi missing, skipped"; fi
		echo "$s" ;;
	php-hello|php-table)
		[ -f "$BUILD/fpmd-php.so" ] || { say "bench: $BUILD/fpmd-php.so not built, $1 skipped"; return 0; }
		s=fpmd
		if [ -n "$PHPFPM" ]; then s="$s php-fpm"
		else say "bench: php-fpm8.2 missing, skipped"; fi
		if [ $HAVE_UWSGI_PHP = 1 ]; then s="$s uwsgi"
		else say "bench: uwsgi-core or uwsgi-plugin-php missing, skipped"; fi
		echo "$s" ;;
	*) die "unknown scenario '$1'" ;;
	esac
}

# Extra fcgi-load arguments: uWSGI's php plugin finds the script at
# DOCUMENT_ROOT + PATH_INFO.
load_args() {
	[ "$1" = uwsgi ] && echo "-p PATH_INFO=$2"
	return 0
}

# One request until it succeeds, for up to 10 s: the server is ready.
wait_ready() {
	i=0
	while [ $i -lt 100 ]; do
		# shellcheck disable=SC2086
		if [ -S "$1" ] && "$LOAD" -c 1 -n 1 -t 2000 -r "$WWW" -e "$3" $4 "unix:$1" "$2" \
			>/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# --- the run ----------------------------------------------------------------
say "bench: $(nproc) CPUs, ${SECS}s per run, $ROUNDS rounds, c=${CONNS:-per scenario}, workers: ${WORKERS:-per scenario}"
say "bench: scenarios: $SCENARIOS"
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
CONNS_USED=""
for scen in $THRU; do
	servers=$(servers_for "$scen")
	conns=$(conns_for "$scen")
	CONNS_USED="$CONNS_USED $scen:$(echo "$conns" | tr ' ' ,)"
	TS=$(date +%s)
	for w in $(workers_for "$scen"); do
		# start every server of the scenario
		for srv in $servers; do
			d=$TMP/$scen-$w/$srv
			mkdir -p "$d"
			"start_$(echo "$srv" | tr - _)" "$d" "$w" ||
				die "$srv did not start: $(cat "$d/out.log" 2>/dev/null)"
			# shellcheck disable=SC2046
			set -- $(request_for "$scen" "$srv")
			XA=$(load_args "$srv" "$1")
			wait_ready "$d/sock" "$1" "$2" "$XA" ||
				die "$srv not answering on $d/sock: $(tail -5 "$d/out.log" "$d/error.log" 2>/dev/null)"
			# an exec pool's programs lead their own process groups: count them too
			if [ "$scen" = php ] && [ "${srv%%-*}" = fpmd ]; then
				for wk in $(pgrep -P "$(head -1 "$d/pgids")"); do
					pgrep -P "$wk" >> "$d/pgids" || true
				done
			fi
			if [ "$scen" = nginx ]; then
				start_nginx_front "$d"
				wait_http "http://127.0.0.1:$(cat "$d/port")$1" "$2" ||
					die "nginx in front of $srv not answering: $(tail -5 "$d/nginx/out.log" "$d/nginx/error.log" 2>/dev/null)"
				# wrk counts whole seconds
				measure "$scen" "$srv" "$d" "${conns%% *}" 1 "$1" "$2" >/dev/null 2>&1 || true
			else
				measure "$scen" "$srv" "$d" "${conns%% *}" "$WARMUP" "$1" "$2" >/dev/null 2>&1 || true
			fi
		done
		for c in $conns; do
			r=1
			while [ $r -le "$ROUNDS" ]; do
				for srv in $servers; do
					d=$TMP/$scen-$w/$srv
					# shellcheck disable=SC2046
					set -- $(request_for "$scen" "$srv")
					json=$(measure "$scen" "$srv" "$d" "$c" "$SECS" "$1" "$2") || true
					[ -n "$json" ] || die "the load generator failed against $srv" \
						"$(cat "$d/wrk.out" 2>/dev/null)"
					# memory right after the run, one line into RAW, progress on stderr
					# shellcheck disable=SC2046
					$PY "$ROOT/bench/report.py" record "$RAW" "$scen" "$w" "$srv" "$r" "$json" \
						$(cat "$d/pgids") >&2
				done
				r=$((r + 1))
			done
		done
		# PHP pools: worker CPU per request, PSS by process, opcache sharing
		case "$scen" in php-*)
			for srv in $servers; do
				d=$TMP/$scen-$w/$srv
				# shellcheck disable=SC2046
				set -- $(request_for "$scen" "$srv")
				XA=$(load_args "$srv" "$1")
				# shellcheck disable=SC2086
				$PY "$ROOT/bench/php.py" "$TMP/php.jsonl" "$scen" "$w" "$srv" "$LOAD" "$WWW" \
					"$1" "$2" "$PHP_REQS" "$(head -1 "$d/pgids")" -- $XA >&2 ||
					die "bench/php.py failed against $srv"
			done ;;
		esac
		stop_all
	done
	say "bench: $scen done in $(($(date +%s) - TS)) s"
done
T1=$(date +%s)

mkdir -p "$RESULTS"
if [ -n "$THRU" ]; then
	$PY "$ROOT/bench/report.py" table "$RAW" "$RESULTS/latest.json" \
		"secs=$SECS" "rounds=$ROUNDS" "conns=${CONNS_USED# }" "wall_s=$((T1 - T0))" \
		"fpmd=$FPMD" "php=$TMP/php.jsonl" "loadavg_start=$LOAD0" "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	# requests/s per scenario and server, as a picture (gnuplot; skipped without it)
	$PY "$ROOT/bench/plot.py" "$RESULTS/latest.json" "$RESULTS/latest.svg" || true
fi

# bench/SCRIPT TMP FPMD PHPFPM LOAD ARG..., its figures in $RESULTS/JSON: in the
# background, so that a TERM or Ctrl-C to this script reaches the trap at once
# (it then TERMs the script, which stops its servers).
run_bench_py() {
	script=$1 json=$2
	shift 2
	BENCH_SECS=$SECS BENCH_ROUNDS=$ROUNDS BENCH_QUICK=${BENCH_QUICK:-0} \
		BENCH_RESULTS=$RESULTS/$json \
		$PY "$ROOT/bench/$script" "$TMP" "$FPMD" "$PHPFPM" "$LOAD" "$@" &
	PMPID=$!
	wait "$PMPID" || die "bench/$script failed"
	PMPID=""
	stop_all
}

# --- process managers: ondemand ramp, max_requests recycling, reloads ------
if [ -n "$PMSCEN" ]; then
	echo
	echo "fpmd bench, process managers: $(nproc) CPUs, fpmd and php-fpm8.2 in the same run," \
		"load average $(cut -d' ' -f1-3 /proc/loadavg) before"
	echo
	# shellcheck disable=SC2086
	run_bench_py pm.py pm.json "$WWW" $PMSCEN
	echo "bench: process managers done in $(($(date +%s) - T1)) s, load average" \
		"$(cut -d' ' -f1-3 /proc/loadavg) after; figures in $RESULTS/pm.json" >&2
fi

# --- real applications: Symfony (classic and php.worker), DokuWiki ----------
if [ -n "$APPSCEN" ]; then
	T2=$(date +%s)
	echo
	echo "fpmd bench, real applications: $(nproc) CPUs, Debian's php.ini and conf.d, load average" \
		"$(cut -d' ' -f1-3 /proc/loadavg) before"
	# shellcheck disable=SC2086
	run_bench_py apps.py apps.json "$ROOT" $APPSCEN
	echo "bench: applications done in $(($(date +%s) - T2)) s; figures in $RESULTS/apps.json" >&2
fi
