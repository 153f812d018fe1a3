/*
 * Sanitizer builds only: what lets the sanitizers run PHP (php pools, -m, -i).
 *
 * dlopen() without RTLD_DEEPBIND.
 * Debian's libphp loads its extensions (opcache, ...) with RTLD_DEEPBIND,
 * which AddressSanitizer refuses outright (a DEEPBIND library would bind
 * malloc and friends to libc's, past the sanitizer's).  php-src drops the flag
 * itself when it is built with a sanitizer; this does the same for a libphp
 * that was not, so `make test SAN=1` runs the php pools too.  The executable
 * exports this dlopen (-Wl,--export-dynamic-symbol=dlopen in the Makefile's
 * SAN flags), and the executable comes first in every library's symbol
 * lookup; the real one (the sanitizer's interceptor) is the next in line.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>
#include <stddef.h>

void *dlopen(const char *file, int flags)
{
	static void *(*next)(const char *, int);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "dlopen");
	return next ? next(file, flags & ~RTLD_DEEPBIND) : NULL;
}

/*
 * PHP keeps some of its startup allocations until the process exits (module
 * registries, interned strings): LeakSanitizer would report them at every
 * `fpmd -m`.  Leaks whose stack passes through libphp are PHP's, not ours.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libphp\n";
}

/* ... and quietly: no table of the suppressions used after every -m. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int fpmd_san_dlopen_unused;
#endif
