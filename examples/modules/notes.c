/*
 * notes: a small JSON API backed by SQLite — what a real module looks like.
 *
 *   GET    /notes        {"notes":[{"id":1,"text":"..."}, ...]}
 *   POST   /notes        body = the note's text            -> 201 {"id":N}
 *   GET    /notes/ID     {"id":ID,"text":"..."}  or 404
 *   DELETE /notes/ID     204 or 404
 *
 * module.param[database] = /var/lib/notes/notes.db   (the pool's user must be able to write it)
 * The schema is created at init; each worker has its own connection.
 * Build: cc -shared -fPIC -I../../include -o notes.so notes.c -lsqlite3
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <fpmd/module.h>

#define NOTE_MAX (64 * 1024)

static const struct fpmd_host *host;

static int notes_init(const struct fpmd_host *h, const struct fpmd_setting *s, size_t n, void **state)
{
	const char *path = NULL;
	sqlite3 *db;
	host = h;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s[i].key, "database") == 0)
			path = s[i].value;
	if (!path) {
		host->log(FPMD_LOG_ERROR, "notes: module.param[database] is not set");
		return -1;
	}
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		host->log(FPMD_LOG_ERROR, "notes: cannot open %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 2000);      /* several workers share the file */
	char *err = NULL;
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
			 "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",
			 NULL, NULL, &err) != SQLITE_OK) {
		host->log(FPMD_LOG_ERROR, "notes: schema: %s", err);
		sqlite3_free(err);
		sqlite3_close(db);
		return -1;
	}
	*state = db;
	return 0;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void put_json_string(struct fpmd_request *r, const unsigned char *s)
{
	char buf[8];
	host->write(r, "\"", 1);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\') {
			buf[0] = '\\';
			buf[1] = (char)*s;
			host->write(r, buf, 2);
		} else if (*s < 0x20) {
			int n = snprintf(buf, sizeof(buf), "\\u%04x", *s);
			host->write(r, buf, (size_t)n);
		} else {
			host->write(r, s, 1);
		}
	}
	host->write(r, "\"", 1);
}

static int answer(struct fpmd_request *r, int status, const char *json)
{
	host->set_status(r, status);
	if (json) {
		host->add_header(r, "Content-Type", "application/json");
		return host->write(r, json, strlen(json));
	}
	return host->flush(r);
}

static int list(sqlite3 *db, struct fpmd_request *r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT id, text FROM notes ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return -1;
	host->add_header(r, "Content-Type", "application/json");
	host->write(r, "{\"notes\":[", 10);
	for (int first = 1; sqlite3_step(st) == SQLITE_ROW; first = 0) {
		char head[64];
		int n = snprintf(head, sizeof(head), "%s{\"id\":%lld,\"text\":", first ? "" : ",",
				 (long long)sqlite3_column_int64(st, 0));
		host->write(r, head, (size_t)n);
		put_json_string(r, sqlite3_column_text(st, 1));
		host->write(r, "}", 1);
	}
	sqlite3_finalize(st);
	return host->write(r, "]}\n", 3);
}

static int create(sqlite3 *db, struct fpmd_request *r)
{
	char *text = malloc(NOTE_MAX + 1);
	size_t len = 0;
	long got;
	if (!text)
		return -1;
	while ((got = host->read_body(r, text + len, NOTE_MAX - len)) > 0)
		len += (size_t)got;
	if (got < 0 || len == 0 || len >= NOTE_MAX) {
		free(text);
		return got < 0 ? -1 : answer(r, len ? 413 : 400, len ? "{\"error\":\"too large\"}\n"
								: "{\"error\":\"empty note\"}\n");
	}
	sqlite3_stmt *st;
	int rc = -1;
	if (sqlite3_prepare_v2(db, "INSERT INTO notes (text) VALUES (?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, text, (int)len, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_DONE) {
			char out[64];
			snprintf(out, sizeof(out), "{\"id\":%lld}\n", (long long)sqlite3_last_insert_rowid(db));
			rc = answer(r, 201, out);
		}
		sqlite3_finalize(st);
	}
	free(text);
	return rc;
}

static int one(sqlite3 *db, struct fpmd_request *r, long long id, int delete)
{
	sqlite3_stmt *st;
	const char *sql = delete ? "DELETE FROM notes WHERE id = ?" : "SELECT text FROM notes WHERE id = ?";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int step = sqlite3_step(st), rc;
	if (delete) {
		rc = sqlite3_changes(db) ? answer(r, 204, NULL) : answer(r, 404, "{\"error\":\"no such note\"}\n");
	} else if (step == SQLITE_ROW) {
		char head[64];
		int n = snprintf(head, sizeof(head), "{\"id\":%lld,\"text\":", id);
		host->add_header(r, "Content-Type", "application/json");
		host->write(r, head, (size_t)n);
		put_json_string(r, sqlite3_column_text(st, 0));
		rc = host->write(r, "}\n", 2);
	} else {
		rc = answer(r, 404, "{\"error\":\"no such note\"}\n");
	}
	sqlite3_finalize(st);
	return rc;
}

static int notes_handle(void *state, struct fpmd_request *r)
{
	sqlite3 *db = state;
	const char *method = host->param(r, "REQUEST_METHOD");
	const char *uri = host->param(r, "DOCUMENT_URI");
	if (!uri)
		uri = host->param(r, "SCRIPT_NAME");
	if (!method || !uri)
		return answer(r, 400, "{\"error\":\"bad request\"}\n");
	if (strcmp(uri, "/notes") == 0) {
		if (strcmp(method, "GET") == 0)
			return list(db, r);
		if (strcmp(method, "POST") == 0)
			return create(db, r);
		return answer(r, 405, "{\"error\":\"use GET or POST\"}\n");
	}
	if (strncmp(uri, "/notes/", 7) == 0) {
		char *end;
		long long id = strtoll(uri + 7, &end, 10);
		if (*end || id <= 0)
			return answer(r, 404, "{\"error\":\"no such note\"}\n");
		if (strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0)
			return one(db, r, id, method[0] == 'D');
		return answer(r, 405, "{\"error\":\"use GET or DELETE\"}\n");
	}
	return answer(r, 404, "{\"error\":\"not found\"}\n");
}

static void notes_shutdown(void *state)
{
	sqlite3_close(state);
}

const struct fpmd_module fpmd_module = {
	.abi = FPMD_MODULE_ABI,
	.name = "notes",
	.init = notes_init,
	.handle = notes_handle,
	.shutdown = notes_shutdown,
};
