/*
 * Hello world on libfcgi (Debian libfcgi-dev), the way FastCGI apps were
 * written for spawn-fcgi: FCGX_Accept on the listening socket spawn-fcgi
 * passes as fd 0, one process per worker (spawn-fcgi -F N).
 */
#include <fcgiapp.h>

int main(void)
{
	FCGX_Stream *in, *out, *err;
	FCGX_ParamArray envp;

	while (FCGX_Accept(&in, &out, &err, &envp) >= 0)
		FCGX_PutS("Content-Type: text/plain\r\n\r\nHello, world!\n", out);
	return 0;
}
