/* smimed: CSV records (RFC 4180), bounded; see csv.h. */
#include <string.h>

#include "csv.h"

void
csv_init(struct csv *c, const char *data, size_t len)
{
	c->p = data;
	c->end = data + len;
	c->line = 0;
	c->next_line = 1;
	/* A UTF-8 byte order mark, as spreadsheets write it, is not data. */
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		c->p += 3;
}

int
csv_record(struct csv *c, char **fields, size_t max_fields, char *buf, size_t bufsize,
    const char **why_r)
{
	size_t n = 0, used = 0;
	const char *p = c->p;

	/* Skip blank lines between records. */
	while (p < c->end && (*p == '\n' || *p == '\r')) {
		if (*p == '\n')
			c->next_line++;
		p++;
	}
	c->line = c->next_line;
	if (p >= c->end) {
		c->p = p;
		return 0;
	}
	for (;;) {
		if (n >= max_fields) {
			*why_r = "too many fields";
			goto bad;
		}
		fields[n++] = buf + used;
		if (p < c->end && *p == '"') {
			/* RFC 4180 2.5-2.7: quoted field, "" is one quote. */
			p++;
			for (;;) {
				if (p >= c->end) {
					*why_r = "a quoted field is not closed";
					goto bad;
				}
				if (*p == '"') {
					if (p + 1 < c->end && p[1] == '"')
						p++;
					else {
						p++;
						break;
					}
				} else if (*p == '\0') {
					*why_r = "a NUL octet";
					goto bad;
				} else if (*p == '\n')
					c->next_line++;
				if (used + 1 >= bufsize) {
					*why_r = "record too long";
					goto bad;
				}
				buf[used++] = *p++;
			}
			if (p < c->end && *p != ',' && *p != '\n' && *p != '\r') {
				*why_r = "text after a closing quote";
				goto bad;
			}
		} else {
			while (p < c->end && *p != ',' && *p != '\n' && *p != '\r') {
				if (*p == '"') {
					*why_r = "a quote inside an unquoted field";
					goto bad;
				}
				if (*p == '\0') {
					*why_r = "a NUL octet";
					goto bad;
				}
				if (used + 1 >= bufsize) {
					*why_r = "record too long";
					goto bad;
				}
				buf[used++] = *p++;
			}
		}
		if (used + 1 > bufsize) {
			*why_r = "record too long";
			goto bad;
		}
		buf[used++] = '\0';
		if (p < c->end && *p == ',') {
			p++;
			continue;
		}
		/* End of record: CRLF, LF, CR or the end of the data. */
		if (p < c->end && *p == '\r')
			p++;
		if (p < c->end && *p == '\n') {
			p++;
			c->next_line++;
		}
		c->p = p;
		return (int)n;
	}
bad:
	c->p = c->end;
	return -1;
}
