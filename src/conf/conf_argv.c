/*
 * exec.command as an argument vector, without a shell: words split on
 * blanks, '…' taken literally, "…" with \" and \\ escapes, a backslash
 * outside quotes escaping the next character.  Pure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int conf_split_argv(const char *s, struct conf_str_list *out, char *err, size_t errlen)
{
	size_t len = strlen(s);
	char *word = malloc(len + 1);
	if (!word)
		return -1;
	memset(out, 0, sizeof(*out));
	size_t w = 0;
	int in_word = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '\0' || c == ' ' || c == '\t') {
			if (in_word) {
				word[w] = '\0';
				struct conf_str_list *l = out;
				char **ni = realloc(l->items, (l->n + 2) * sizeof(*ni));
				char *copy = strdup(word);
				if (!ni || !copy) {
					free(copy);
					if (ni)
						l->items = ni;
					goto fail;
				}
				l->items = ni;
				l->items[l->n++] = copy;
				l->items[l->n] = NULL;
				l->cap = l->n + 1;
				w = 0;
				in_word = 0;
			}
			continue;
		}
		in_word = 1;
		if (c == '\'') {
			const char *end = strchr(s + i + 1, '\'');
			if (!end) {
				snprintf(err, errlen, "unterminated ' quote");
				goto fail;
			}
			size_t n = (size_t)(end - (s + i + 1));
			memcpy(word + w, s + i + 1, n);
			w += n;
			i += n + 1;
		} else if (c == '"') {
			for (i++;; i++) {
				if (s[i] == '\0') {
					snprintf(err, errlen, "unterminated \" quote");
					goto fail;
				}
				if (s[i] == '"')
					break;
				if (s[i] == '\\' && (s[i + 1] == '"' || s[i + 1] == '\\'))
					i++;
				word[w++] = s[i];
			}
		} else if (c == '\\' && s[i + 1]) {
			word[w++] = s[++i];
		} else {
			word[w++] = c;
		}
	}
	free(word);
	if (out->n == 0) {
		snprintf(err, errlen, "empty command");
		conf_str_list_free(out);
		return -1;
	}
	return 0;
fail:
	free(word);
	conf_str_list_free(out);
	return -1;
}
