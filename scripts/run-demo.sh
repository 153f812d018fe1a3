#!/bin/sh
# `make run`: starts examples/fpmd.conf in the foreground and prints how to
# talk to it.  Ctrl-C stops it cleanly.
set -eu
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) bin=$build ;; *) bin=$top/$build ;; esac
demo=/tmp/fpmd-demo
# The demo's scripts must be readable by the pool's user.
rm -rf "$demo"
mkdir -p "$demo/www"
cp -r "$top/examples/cgi-bin" "$demo/www/"
cp -r "$top/examples/php" "$demo/www/"
chmod -R a+rX "$demo"
ctl="$bin/fpmctl"
sock=/tmp/fpmd-demo-cgi.sock
cat <<MSG
fpmd demo: pool 'cgi' on unix:$sock, pool 'php' on unix:/tmp/fpmd-demo-php.sock (log: this terminal, access log /tmp/fpmd-demo-access.log)
Try, from another terminal:
  $ctl ping -s unix:$sock
  $ctl status -s unix:$sock --full
  $ctl request -s unix:$sock --root $demo/www /cgi-bin/hello.sh
  $ctl request -s unix:$sock --root $demo/www -d 'name=fpmd' /cgi-bin/env.py
  $ctl request -s unix:$sock --root $demo/www /cgi-bin/stream.sh
  $ctl request -s unix:/tmp/fpmd-demo-php.sock --root $demo/www /php/index.php
  $ctl request -s unix:/tmp/fpmd-demo-php.sock --root $demo/www /php/finish.php
  $ctl top -s unix:/tmp/fpmd-demo-status.sock      # live view, answered by the master
  $ctl pools -c /tmp/fpmd-demo.ctl                  # the master's view
  $ctl reload -c /tmp/fpmd-demo.ctl                 # reload, waits for the outcome
Through nginx: scripts/demo-nginx.sh  (nginx on 127.0.0.1:8080 in front of both pools)
Ctrl-C stops fpmd.
MSG
exec "$bin/fpmd" -F -O -y "$top/examples/fpmd.conf"
