/*
 * smimed: a bounded reader of CSV (RFC 4180) for user imports.
 *
 * Fields are separated by commas, records by CRLF or LF; a field in double
 * quotes may hold commas, line breaks and doubled quotes.  Limits: at most
 * max_fields fields per record and bufsize octets for one record's fields
 * together; more is an error with a message, never a crash.
 */
#ifndef SMIMED_CSV_H
#define SMIMED_CSV_H

#include <stddef.h>

struct csv {
	const char *p, *end;
	size_t line;          /* line where the record last read began, from 1 */
	size_t next_line;
};

void csv_init(struct csv *c, const char *data, size_t len);
/*
 * Read the next record: fields[i] point into buf (NUL-terminated).
 * Returns the number of fields (>= 1), 0 at the end of the data, or -1 with
 * *why_r set for a malformed record (the rest of the data is then skipped).
 * A NUL octet in the data is malformed.
 */
int csv_record(struct csv *c, char **fields, size_t max_fields, char *buf, size_t bufsize,
    const char **why_r);

#endif
