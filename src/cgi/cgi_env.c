/*
 * Which FastCGI params become a CGI script's environment: an allowlist.
 *
 * A web server sends what its configuration says; an attacker controls
 * every HTTP header and, through a careless fastcgi_param, sometimes more.
 * Each of the many programs a script may start reads its own switches from
 * the environment (git's GIT_CONFIG_COUNT/KEY/VALUE run commands, OpenSSL
 * loads OPENSSL_CONF, the JVM JAVA_TOOL_OPTIONS, curl the *_proxy family),
 * so a denylist loses the day the next one appears.  What passes:
 *  - RFC 3875 section 4.1's meta-variables, and the ones nginx's
 *    fastcgi_params, Apache's mod_proxy_fcgi and lighttpd send besides;
 *  - HTTP_* made only of [A-Z0-9_] (a header as the web server spells it),
 *    except HTTP_PROXY (httpoxy, CVE-2016-5385);
 *  - the names the operator lists in cgi.pass_params ("NAME" or "PREFIX*").
 * The pool's env[] (and, with clear_env = no, the worker's environment) is
 * the operator's own and is added by the handler, not filtered here.
 */
#include "cgi/cgi.h"

#include <string.h>

static const char *const meta_variables[] = {
	/* RFC 3875, 4.1 */
	"AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "PATH_INFO",
	"PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
	"REMOTE_USER", "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
	"SERVER_PROTOCOL", "SERVER_SOFTWARE",
	/* what web servers add (nginx fastcgi_params, Apache, lighttpd, Caddy) */
	"SCRIPT_FILENAME", "REQUEST_URI", "DOCUMENT_URI", "DOCUMENT_ROOT", "REQUEST_SCHEME",
	"HTTPS", "REMOTE_PORT", "SERVER_ADDR", "REDIRECT_STATUS", "REDIRECT_URI", "REDIRECT_URL",
	"REDIRECT_QUERY_STRING", "CONTEXT_PREFIX", "CONTEXT_DOCUMENT_ROOT", "SERVER_ADMIN",
	"SERVER_SIGNATURE", "UNIQUE_ID", "REMOTE_PASSWD", "SSL_PROTOCOL", "SSL_CIPHER",
	"SSL_SESSION_ID", "SSL_TLS_SNI",
};

static int is_header_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int listed(const char *name, const char *const *extra, size_t nextra)
{
	for (size_t i = 0; i < nextra; i++) {
		const char *e = extra[i];
		size_t n = strlen(e);
		if (n && e[n - 1] == '*') {
			if (strncmp(name, e, n - 1) == 0)
				return 1;
		} else if (strcmp(name, e) == 0) {
			return 1;
		}
	}
	return 0;
}

int cgi_env_allowed(const char *name, const char *const *extra, size_t nextra)
{
	if (!name || !*name || strchr(name, '='))
		return 0;
	for (size_t i = 0; i < sizeof(meta_variables) / sizeof(meta_variables[0]); i++)
		if (strcmp(name, meta_variables[i]) == 0)
			return 1;
	if (strncmp(name, "HTTP_", 5) == 0 && strcmp(name, "HTTP_PROXY") != 0 &&
	    is_header_name(name + 5))
		return 1;
	/* SSL_CLIENT_* / SSL_SERVER_*: mod_ssl's certificate fields, never OpenSSL's own switches */
	if ((strncmp(name, "SSL_CLIENT_", 11) == 0 || strncmp(name, "SSL_SERVER_", 11) == 0) &&
	    is_header_name(name))
		return 1;
	return listed(name, extra, nextra);
}
