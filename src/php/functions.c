/*
 * php-fpm's PHP functions, for scripts written against it:
 * fastcgi_finish_request(), fpm_get_status(), apache_request_headers() and
 * its alias getallheaders(); and FrankenPHP's names of the same, with
 * apache_response_headers(), so that worker scripts and runners written
 * for it find what they call.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <php.h>
#include <php_main.h>
#include <SAPI.h>
#include <ext/json/php_json.h>
#include <ext/standard/head.h>
#include <zend_extensions.h>
#include <main/php_output.h>

#include "fcgi/fcgi.h"
#include "php/php_host.h"
#include "php/php_sapi.h"
#include "worker/request.h"

/* The response is complete for the client; the script goes on (php-fpm's). */
ZEND_FUNCTION(fastcgi_finish_request)
{
	ZEND_PARSE_PARAMETERS_NONE();
	struct request *r = php_current ? php_current->req : NULL;
	if (!r || r->finished)
		RETURN_FALSE;
	php_output_end_all();
	php_header();
	if (php_host->finish(r) < 0)
		RETURN_FALSE;
	RETURN_TRUE;
}

/* "Content-Type" from CONTENT_TYPE, "Accept-Language" from HTTP_ACCEPT_LANGUAGE */
static void add_header(zval *arr, const char *name, size_t skip, const char *value,
		       size_t value_len)
{
	char key[256];
	size_t n = 0;
	int upper = 1;
	for (const char *p = name + skip; *p && n < sizeof(key) - 1; p++) {
		if (*p == '_') {
			key[n++] = '-';
			upper = 1;
		} else {
			key[n++] = (char)(upper ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
			upper = 0;
		}
	}
	add_assoc_stringl_ex(arr, key, n, value, value_len);
}

ZEND_FUNCTION(apache_request_headers)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	struct request *r = php_current ? php_current->req : NULL;
	if (!r)
		return;
	/* last param first: php-fpm's order (its params live in a list built by prepending) */
	size_t n = php_host->param_count(r);
	for (size_t i = n; i-- > 0;) {
		const struct fcgi_param *p = php_host->param_at(r, i);
		if (!p)
			continue;
		if (p->name_len > 5 && strncmp(p->name, "HTTP_", 5) == 0)
			add_header(return_value, p->name, 5, p->value, p->value_len);
		else if (strcmp(p->name, "CONTENT_TYPE") == 0 || strcmp(p->name, "CONTENT_LENGTH") == 0)
			add_header(return_value, p->name, 0, p->value, p->value_len);
	}
}

/* The response's headers so far, "Name" => "value" (the last of a repeated name). */
ZEND_FUNCTION(apache_response_headers)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	zend_llist_position pos;
	for (sapi_header_struct *h = zend_llist_get_first_ex(&SG(sapi_headers).headers, &pos); h;
	     h = zend_llist_get_next_ex(&SG(sapi_headers).headers, &pos)) {
		const char *colon = memchr(h->header, ':', h->header_len);
		if (!colon || colon == h->header)
			continue;
		const char *v = colon + 1, *end = h->header + h->header_len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		add_assoc_stringl_ex(return_value, h->header, (size_t)(colon - h->header), v,
				     (size_t)(end - v));
	}
}

/* php-fpm's keys are the status page's names with dashes: "start time" → "start-time". */
static void copy_dashed(zval *dst, zval *src)
{
	zend_string *key;
	zval *val;
	ZEND_HASH_FOREACH_STR_KEY_VAL(Z_ARRVAL_P(src), key, val) {
		if (!key)
			continue;
		char name[64];
		size_t n = ZSTR_LEN(key) < sizeof(name) - 1 ? ZSTR_LEN(key) : sizeof(name) - 1;
		for (size_t i = 0; i < n; i++)
			name[i] = ZSTR_VAL(key)[i] == ' ' ? '-' : ZSTR_VAL(key)[i];
		name[n] = '\0';
		if (strcmp(name, "processes") == 0 && Z_TYPE_P(val) == IS_ARRAY) {
			zval procs;
			array_init(&procs);
			zval *proc;
			ZEND_HASH_FOREACH_VAL(Z_ARRVAL_P(val), proc) {
				if (Z_TYPE_P(proc) != IS_ARRAY)
					continue;
				zval one;
				array_init(&one);
				copy_dashed(&one, proc);
				add_next_index_zval(&procs, &one);
			} ZEND_HASH_FOREACH_END();
			add_assoc_zval(dst, "procs", &procs);
			continue;
		}
		if (strcmp(name, "memory-peak") == 0 || strcmp(name, "pool-memory") == 0)
			continue;           /* fpmd's own, not in php-fpm 8.2's array */
		if (strcmp(name, "content-length") == 0) {
			n = strlen(strcpy(name, "request-length"));
		} else if (strcmp(name, "request-uri") == 0 && Z_TYPE_P(val) == IS_STRING) {
			/* php-fpm's array keeps the query apart */
			const char *u = Z_STRVAL_P(val), *q = strchr(u, '?');
			add_assoc_stringl(dst, "request-uri", u, q ? (size_t)(q - u) : Z_STRLEN_P(val));
			add_assoc_string(dst, "query-string", q ? q + 1 : "");
			continue;
		}
		Z_TRY_ADDREF_P(val);
		add_assoc_zval_ex(dst, name, n, val);
	} ZEND_HASH_FOREACH_END();
}

ZEND_FUNCTION(fpm_get_status)
{
	ZEND_PARSE_PARAMETERS_NONE();
	size_t len = 0;
	char *json = php_host->status_json(php_pool, &len);
	if (!json)
		RETURN_FALSE;
	zval decoded;
	ZVAL_UNDEF(&decoded);
	int rc = php_json_decode_ex(&decoded, json, len, PHP_JSON_OBJECT_AS_ARRAY, 64);
	free(json);
	if (rc == FAILURE || Z_TYPE(decoded) != IS_ARRAY) {
		zval_ptr_dtor(&decoded);
		RETURN_FALSE;
	}
	array_init(return_value);
	copy_dashed(return_value, &decoded);
	zval_ptr_dtor(&decoded);
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fastcgi_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_apache_request_headers, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

/* php.worker (worker_mode.c); FrankenPHP's name too, so its worker scripts and runners work */
ZEND_FUNCTION(fpmd_handle_request);
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fpmd_handle_request, 0, 1, _IS_BOOL, 0)
	ZEND_ARG_TYPE_INFO(0, handler, IS_CALLABLE, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_MASK_EX(arginfo_fpm_get_status, 0, 0, MAY_BE_ARRAY | MAY_BE_FALSE)
ZEND_END_ARG_INFO()

const zend_function_entry php_fpmd_functions[] = {
	ZEND_FE(fastcgi_finish_request, arginfo_fastcgi_finish_request)
	ZEND_FE(apache_request_headers, arginfo_apache_request_headers)
	ZEND_FALIAS(getallheaders, apache_request_headers, arginfo_apache_request_headers)
	ZEND_FE(fpm_get_status, arginfo_fpm_get_status)
	ZEND_FE(apache_response_headers, arginfo_apache_request_headers)
	ZEND_FE(fpmd_handle_request, arginfo_fpmd_handle_request)
	ZEND_FALIAS(frankenphp_handle_request, fpmd_handle_request, arginfo_fpmd_handle_request)
	ZEND_FALIAS(frankenphp_finish_request, fastcgi_finish_request, arginfo_fastcgi_finish_request)
	ZEND_FALIAS(frankenphp_request_headers, apache_request_headers, arginfo_apache_request_headers)
	ZEND_FALIAS(frankenphp_response_headers, apache_response_headers,
		    arginfo_apache_request_headers)
	ZEND_FE_END
};

/* fpmd -m: php -m's shape. */
static int cmp_names(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_zend_extension(void *data)
{
	const zend_extension *ext = data;
	php_printf("%s\n", ext->name);
}

void php_print_modules(void)
{
	size_t n = zend_hash_num_elements(&module_registry), i = 0;
	const char **names = calloc(n ? n : 1, sizeof(*names));
	zend_module_entry *m;
	if (!names)
		return;
	ZEND_HASH_FOREACH_PTR(&module_registry, m) {
		if (i < n)
			names[i++] = m->name;
	} ZEND_HASH_FOREACH_END();
	qsort(names, i, sizeof(*names), cmp_names);
	php_printf("[PHP Modules]\n");
	for (size_t k = 0; k < i; k++)
		php_printf("%s\n", names[k]);
	php_printf("\n[Zend Modules]\n");
	zend_llist_apply(&zend_extensions, print_zend_extension);
	php_printf("\n");
	free(names);
}
