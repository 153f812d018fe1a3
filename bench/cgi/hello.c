/*
 * The compiled CGI program of `make bench` (RFC 3875 §6): one header, one
 * line of body, exit 0.  What is measured is the gateway: spawn, pipes,
 * relay, reap.
 */
#include <stdio.h>

int main(void)
{
	fputs("Content-Type: text/plain\r\n\r\nHello, world!\n", stdout);
	return 0;
}
