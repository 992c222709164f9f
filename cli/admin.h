/*
 * smime admin: what its files share (cmd_admin.c holds the table of
 * actions and most of them; admin_csv.c the CSV import of users).  The
 * HTTP side is admin_http.c, declared in cli.h.
 */
#ifndef SMIME_CLI_ADMIN_H
#define SMIME_CLI_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include <smime/error.h>

struct admin_options;

/* A column of a table: a field of each item, or NULL and fn (a malloc'd text). */
struct column {
	const char *head;
	const char *key;
	char *(*fn)(const json_t *item);
};

/* One line per item, columns aligned, the header first. */
int admin_print_table(const json_t *items, const struct column *cols, size_t ncol);
/* obj's string field key, or "" when there is none. */
const char *admin_str(const json_t *obj, const char *key);
/* s is valid UTF-8. */
bool admin_utf8_ok(const char *s);
/* "out of memory", as an exit status. */
int admin_oom(void);
/* The file at path (- for standard input), at most max octets, with a NUL
 * after them; NULL with err set.  The caller frees it. */
unsigned char *admin_slurp_file(const char *path, size_t max, size_t *len_r,
    struct smime_error *err);

/* smime admin user import-csv FILE (admin_csv.c). */
int admin_import_csv(const char *path, const struct admin_options *conn);

#endif
