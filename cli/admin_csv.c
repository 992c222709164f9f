/*
 * smime admin user import-csv: a CSV file of users (RFC 4180) read and
 * checked record by record, sent to the service in chunks of rows, each
 * with the header line, and every row's result reported (cmd_admin.c
 * dispatches here).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin.h"
#include "cli.h"

#define CSV_MAX (16u * 1024 * 1024)      /* the whole file */
#define CSV_CHUNK_ROWS 100               /* rows per request, each with the header */
#define CSV_MAX_COLUMNS 64               /* of the header, searched for "email" */

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct csv_record {
	size_t start, end;               /* offsets in the file, the line end included */
	long line;                       /* the line it starts on, from 1 */
	bool blank;                      /* nothing before its line end */
};

/*
 * Split d[start..n) into records at line ends outside quoted fields, and
 * check each record as the service reads it, so that no chunk holds a
 * record that would make the service stop reading the chunk halfway:
 * RFC 4180 2.5: "If fields are not enclosed with double quotes, then double
 * quotes may not appear inside the fields."  2.6: "Fields containing line
 * breaks (CRLF), double quotes, and commas should be enclosed in
 * double-quotes."  2.7: "a double-quote appearing inside a field must be
 * escaped by preceding it with another double quote."
 * A line ends with CRLF, LF, or a CR alone; the service ends a record at a
 * lone CR too, and counts lines by LF, so a lone CR outside quotes is made
 * LF here (d is changed) and both sides number the lines alike.
 * Returns false with *line_r and *why_r for a record that breaks a rule
 * (*line_r 0: out of memory).
 */
static bool
csv_split(char *d, size_t start, size_t n, struct csv_record **recs_r, size_t *n_r,
    long *line_r, const char **why_r)
{
	enum { FIELD_START, UNQUOTED, QUOTED, CLOSED } st = FIELD_START;
	struct csv_record *recs = NULL, r = { start, start, 1, false };
	size_t nrec = 0, cap = 0;
	long line = 1, quote_line = 0;

	*recs_r = NULL;
	*n_r = 0;
	for (size_t i = start; i <= n; i++) {
		bool eol = i == n && i > r.start;

		if (i < n) {
			char ch = d[i];
			if (ch == '\0') {
				*why_r = "a NUL octet";
				goto bad;
			}
			if (st == QUOTED) {
				if (ch == '"')
					st = CLOSED;
				else if (ch == '\n')
					line++;
				continue;
			}
			if (st == CLOSED && ch == '"') {
				st = QUOTED;             /* a doubled quote */
				continue;
			}
			if (st == CLOSED && ch != ',' && ch != '\r' && ch != '\n') {
				*why_r = "text after the closing quote of a field (RFC 4180 2.7: a quote "
				    "inside a quoted field is written twice)";
				goto bad;
			}
			if (st == FIELD_START && ch == '"') {
				st = QUOTED;
				quote_line = line;
				continue;
			}
			if (ch == '"') {
				*why_r = "a quote inside a field that is not quoted (RFC 4180 2.5: quote "
				    "the field and write the quote twice)";
				goto bad;
			}
			if (ch == ',') {
				st = FIELD_START;
				continue;
			}
			if (ch != '\r' && ch != '\n') {
				st = UNQUOTED;
				continue;
			}
			if (ch == '\r' && i + 1 < n && d[i + 1] == '\n')
				i++;
			else
				d[i] = '\n';
			line++;
			st = FIELD_START;
			eol = true;
		} else if (st == QUOTED) {
			line = quote_line;
			*why_r = "a quoted field is not closed (RFC 4180 2.7: a quote inside a quoted "
			    "field is written twice)";
			goto bad;
		}
		if (!eol)
			continue;
		r.end = i < n ? i + 1 : n;
		r.blank = d[r.start] == '\r' || d[r.start] == '\n';
		if (nrec == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct csv_record *nr = realloc(recs, ncap * sizeof(*nr));
			if (nr == NULL) {
				line = 0;
				goto bad;
			}
			recs = nr;
			cap = ncap;
		}
		recs[nrec++] = r;
		r.start = r.end;
		r.line = line;
	}
	*recs_r = recs;
	*n_r = nrec;
	return true;
bad:
	free(recs);
	*line_r = line;
	return false;
}

/*
 * The idx-th field of a record (checked by csv_split), unquoted, into out
 * (cut to size); false when the record has fewer fields.
 */
static bool
csv_field(const char *d, size_t i, size_t end, size_t idx, char *out, size_t size)
{
	for (size_t k = 0;; k++) {
		size_t o = 0;
		bool quoted = i < end && d[i] == '"';

		i += quoted;
		for (; i < end; i++) {
			if (quoted && d[i] == '"') {
				if (i + 1 < end && d[i + 1] == '"') {
					i++;
				} else {
					quoted = false;
					continue;
				}
			} else if (!quoted && (d[i] == ',' || d[i] == '\r' || d[i] == '\n')) {
				break;
			}
			if (k == idx && o + 1 < size)
				out[o++] = d[i];
		}
		if (k == idx) {
			out[o] = '\0';
			return true;
		}
		if (i >= end || d[i] != ',')
			return false;
		i++;
	}
}

/* The index of the header's column called name (any case), or -1. */
static int
csv_column(const char *d, const struct csv_record *h, const char *name)
{
	char field[128];

	for (int k = 0; k < CSV_MAX_COLUMNS && csv_field(d, h->start, h->end, (size_t)k, field, sizeof(field));
	    k++)
		if (strcasecmp(field, name) == 0)
			return k;
	return -1;
}

struct import {
	const char *d;                   /* the file */
	const struct csv_record *recs;   /* recs[0]: the header */
	long hlines;                     /* lines of the header */
	int email_col;
	size_t created, existing, failed, rows_total, rows_sent;
	json_t *rows;                    /* the report, lines counted in the file */
	bool progress;
};

static void
progress(const struct import *im)
{
	if (!im->progress)
		return;
	fprintf(stderr, "\rimporting users: %zu/%zu", im->rows_sent, im->rows_total);
	fflush(stderr);
}

/*
 * The service numbers the lines of the body it got (the header is line 1,
 * the first row starts on line hlines + 1).  Map a body line back to the
 * file's, record by record (blank lines were left out of the body).
 */
static long
file_line(const struct import *im, long body_line, size_t first, size_t last)
{
	long at = im->hlines + 1;

	for (size_t k = first; k <= last; k++) {
		const struct csv_record *r = &im->recs[k];
		long span = 0;
		if (r->blank)
			continue;
		for (size_t i = r->start; i < r->end; i++)
			span += im->d[i] == '\n';
		if (span == 0)
			span = 1;
		if (body_line >= at && body_line < at + span)
			return r->line + (body_line - at);
		at += span;
	}
	return body_line;
}

/* Send the rows first..last (and the header) and add the answer to the report. */
static int
import_chunk(struct admin_conn *c, struct import *im, size_t first, size_t last)
{
	const struct csv_record *h = &im->recs[0];
	size_t len = h->end - h->start, off, i, nrows = 0, reported = 0;
	struct admin_reply r;
	json_t *ans, *rows, *row;
	json_error_t je;
	char *body;
	int rc;

	for (size_t k = first; k <= last; k++)
		if (!im->recs[k].blank)
			len += im->recs[k].end - im->recs[k].start;
	if ((body = malloc(len)) == NULL)
		return admin_oom();
	memcpy(body, im->d + h->start, h->end - h->start);
	off = h->end - h->start;
	for (size_t k = first; k <= last; k++) {
		const struct csv_record *rec = &im->recs[k];
		if (rec->blank)
			continue;
		memcpy(body + off, im->d + rec->start, rec->end - rec->start);
		off += rec->end - rec->start;
		nrows++;
	}
	rc = admin_request(c, "POST", "/api/v1/users/import", NULL, "text/csv", body, len, &r);
	free(body);
	if (rc != EXIT_OK)
		return rc;
	ans = json_loadb(r.data != NULL ? r.data : "", r.len, 0, &je);
	admin_reply_free(&r);
	rows = json_object_get(ans, "rows");
	if (!json_is_array(rows)) {
		json_decref(ans);
		return admin_error(EXIT_IO, "io", 0, "the answer to the import is not a report: %s",
		    ans == NULL ? je.text : "no \"rows\"");
	}
	json_array_foreach(rows, i, row) {
		json_t *ln = json_object_get(row, "line");
		const char *st = admin_str(row, "status");
		if (json_is_integer(ln))
			json_object_set_new(row, "line", json_integer(file_line(im,
			    (long)json_integer_value(ln), first, last)));
		im->created += strcmp(st, "created") == 0;
		im->existing += strcmp(st, "exists") == 0;
		im->failed += strcmp(st, "created") != 0 && strcmp(st, "exists") != 0;
		json_array_append(im->rows, row);
		reported++;
	}
	/*
	 * Every row sent must be in the report.  One the service did not read
	 * (it stops at a record it cannot split) is a failure, never silence.
	 */
	for (size_t k = first; reported < nrows && k <= last; k++) {
		const struct csv_record *rec = &im->recs[k];
		bool seen = false;
		char email[256] = "";
		if (rec->blank)
			continue;
		json_array_foreach(rows, i, row)
			seen = seen || json_integer_value(json_object_get(row, "line")) == rec->line;
		if (seen)
			continue;
		if (im->email_col >= 0)
			csv_field(im->d, rec->start, rec->end, (size_t)im->email_col, email,
			    sizeof(email));
		json_array_append_new(im->rows, json_pack("{s:I,s:s,s:s,s:s}", "line",
		    (json_int_t)rec->line, "email", admin_utf8_ok(email) ? email : "", "status", "error",
		    "message", "not in the service's report: it did not read this row"));
		im->failed++;
	}
	json_decref(ans);
	return EXIT_OK;
}

static int
import_report(const struct import *im, long not_sent_from)
{
	static const struct column cols[] = { { "LINE", "line", NULL }, { "EMAIL", "email", NULL },
		{ "STATUS", "status", NULL }, { "MESSAGE", "message", NULL } };
	int rc = EXIT_OK;

	if (g.json) {
		json_t *j = json_pack("{s:I,s:I,s:I,s:O}", "created", (json_int_t)im->created,
		    "existing", (json_int_t)im->existing, "failed", (json_int_t)im->failed,
		    "rows", im->rows);
		if (j != NULL && not_sent_from > 0)
			json_object_set_new(j, "not_sent_from_line", json_integer(not_sent_from));
		json_out(j);
		return EXIT_OK;
	}
	if (json_array_size(im->rows) > 0)
		rc = admin_print_table(im->rows, cols, N(cols));
	printf("%zu created, %zu already present, %zu failed, of %zu rows%s\n", im->created,
	    im->existing, im->failed, im->rows_total, not_sent_from > 0 ? " (import stopped)" : "");
	return rc;
}

int
admin_import_csv(const char *path, const struct admin_options *conn)
{
	struct smime_error err;
	struct admin_conn *c = NULL;
	struct csv_record *recs = NULL;
	struct import im = { 0 };
	unsigned char *data;
	const char *why = NULL;
	size_t len, nrec = 0, hdr_start = 0;
	long bad_line = 0;
	int rc;

	if ((data = admin_slurp_file(path, CSV_MAX, &len, &err)) == NULL)
		return fail("admin", &err);
	/* A byte order mark (as spreadsheets write) is not part of the header. */
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		hdr_start = 3;
	if (!csv_split((char *)data, hdr_start, len, &recs, &nrec, &bad_line, &why)) {
		rc = bad_line == 0 ? admin_oom() : admin_error(EXIT_MALFORMED, "malformed-input", 0,
		    "%s: line %ld: %s; nothing was imported", path, bad_line, why);
		goto out;
	}
	im.d = (const char *)data;
	im.recs = recs;
	if (nrec == 0 || recs[0].blank || (im.email_col = csv_column(im.d, &recs[0], "email")) < 0) {
		rc = admin_error(EXIT_MALFORMED, "malformed-input", 0, "%s: line 1: a header line "
		    "naming the columns is required, with at least 'email' (and optionally name, "
		    "groups, aliases)", path);
		goto out;
	}
	for (size_t i = recs[0].start; i < recs[0].end; i++)
		im.hlines += im.d[i] == '\n';
	for (size_t k = 1; k < nrec; k++)
		im.rows_total += !recs[k].blank;
	if (im.rows_total == 0) {
		rc = admin_error(EXIT_MALFORMED, "malformed-input", 0, "%s: no rows after the "
		    "header line", path);
		goto out;
	}
	if ((im.rows = json_array()) == NULL) {
		rc = admin_oom();
		goto out;
	}
	im.progress = isatty(STDERR_FILENO) && !g.quiet;
	if ((rc = admin_conn_new(conn, &c)) != EXIT_OK)
		goto out;
	progress(&im);
	for (size_t k = 1; k < nrec;) {
		size_t first = 0, last = 0, rows = 0;
		/* Up to CSV_CHUNK_ROWS rows, split only between records. */
		for (; k < nrec && rows < CSV_CHUNK_ROWS; k++) {
			if (recs[k].blank)
				continue;
			if (rows++ == 0)
				first = k;
			last = k;
		}
		if (rows == 0)
			break;
		if ((rc = import_chunk(c, &im, first, last)) != EXIT_OK) {
			if (im.progress)
				fputc('\n', stderr);
			if (!g.json)
				fprintf(stderr, "smime admin: the rows from line %ld on were not "
				    "imported%s\n", recs[first].line, im.rows_sent > 0 ?
				    "; those before were" : "");
			if (im.rows_sent > 0)
				import_report(&im, recs[first].line);
			goto out;
		}
		im.rows_sent += rows;
		progress(&im);
	}
	if (im.progress)
		fputc('\n', stderr);
	rc = import_report(&im, 0);
	if (rc == EXIT_OK && im.failed > 0)
		rc = EXIT_INVALID;
out:
	admin_conn_free(c);
	json_decref(im.rows);
	free(recs);
	OPENSSL_cleanse(data, len);
	free(data);
	return rc;
}
