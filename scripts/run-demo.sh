#!/bin/sh
# `make run`: starts examples/fpmd.conf in the foreground, with a scratch
# prefix, and prints how to talk to it.  Ctrl-C stops it cleanly.
set -eu
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=${FPMD_DEMO_PREFIX:-/tmp/fpmd-demo}
mkdir -p "$prefix/run" "$prefix/log"
chmod 755 "$prefix"
# The demo's scripts must be readable by the pool's user.
root="$prefix/www"
rm -rf "$root"
mkdir -p "$root"
cp -r "$top/examples/cgi-bin" "$root/"
chmod -R a+rX "$root"
if [ "$(id -u)" -eq 0 ]; then user=nobody; else user=$(id -un); fi
export FPMD_DEMO_USER="$user" FPMD_DEMO_ROOT="$root"
ctl="$top/$build/fpmctl"
sock="$prefix/run/cgi.sock"
cat <<MSG
fpmd demo: pool 'cgi' on unix:$sock (prefix $prefix, log in $prefix/log/fpmd.log)
Try, from another terminal:
  $ctl request -s unix:$sock /ping
  $ctl request -s unix:$sock '/status?full'
  $ctl request -s unix:$sock --root $root /cgi-bin/hello.sh
  $ctl request -s unix:$sock --root $root -d 'name=fpmd' /cgi-bin/env.py
  $ctl request -s unix:$sock --root $root /cgi-bin/stream.sh
  $ctl pools -c $prefix/run/fpmd.ctl          # the master's view
  $ctl reload -c $prefix/run/fpmd.ctl         # reload, waits for the outcome
Through nginx: scripts/demo-nginx.sh $build  (nginx on 127.0.0.1:8080 in front of this pool)
Ctrl-C stops fpmd gracefully.
MSG
exec "$top/$build/fpmd" -F -O -p "$prefix" -y "$top/examples/fpmd.conf"
