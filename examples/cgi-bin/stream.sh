#!/bin/sh
# Output reaches the client as it is written, one line a second.
printf 'Content-Type: text/plain\r\n\r\n'
for i in 1 2 3; do echo "tick $i"; sleep 1; done
