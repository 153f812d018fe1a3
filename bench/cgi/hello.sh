#!/bin/sh
# The shell CGI of `make bench`: one builtin printf, so the cost measured is
# the gateway's plus starting /bin/sh.
printf 'Content-Type: text/plain\r\n\r\nHello, world!\n'
