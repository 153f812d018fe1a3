#!/bin/sh
# The smallest CGI program: headers, an empty line, the body.
printf 'Content-Type: text/plain\r\n\r\n'
echo "Hello from fpmd, pid $$"
echo "You asked for: $REQUEST_METHOD $REQUEST_URI"
