/*
 * Users and groups by name or by number, php-fpm's rule: an all-digit
 * value is an id, valid even with no passwd/group entry.
 */
#ifndef FPMD_IDS_H
#define FPMD_IDS_H

#include <stddef.h>
#include <sys/types.h>

/* 0 with uid (and the user's primary gid, or -1 without an entry) and name ("" if none); -1. */
int ids_user(const char *s, uid_t *uid, gid_t *gid, char *name, size_t cap);
int ids_group(const char *s, gid_t *gid);

#endif
