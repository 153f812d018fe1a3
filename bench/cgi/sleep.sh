#!/bin/sh
# The slow CGI of bench/pm.py's ondemand-ramp: 200 ms, then a short answer.
sleep 0.2
printf 'Content-Type: text/plain\r\n\r\nslept\n'
