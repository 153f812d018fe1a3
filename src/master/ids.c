/* Users and groups by name or number (see ids.h). */
#include "master/ids.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 10;
}

int ids_user(const char *s, uid_t *uid, gid_t *gid, char *name, size_t cap)
{
	struct passwd *pw = all_digits(s) ? getpwuid((uid_t)strtoul(s, NULL, 10)) : getpwnam(s);
	if (name && cap)
		name[0] = '\0';
	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		if (name && cap)
			snprintf(name, cap, "%s", pw->pw_name);
		return 0;
	}
	if (!all_digits(s))
		return -1;
	*uid = (uid_t)strtoul(s, NULL, 10);
	*gid = (gid_t)-1;
	return 0;
}

int ids_group(const char *s, gid_t *gid)
{
	struct group *gr = all_digits(s) ? getgrgid((gid_t)strtoul(s, NULL, 10)) : getgrnam(s);
	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (!all_digits(s))
		return -1;
	*gid = (gid_t)strtoul(s, NULL, 10);
	return 0;
}
