/*
 * The MIME layer: parsing and serialising with GMime, and the few byte-level
 * steps S/MIME needs on top of it (RFC 8551 3.1 canonicalisation, the exact
 * bytes of a signed part).  No MIME parsing is done here by hand.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "internal.h"

static GMimeFormatOptions *
dos_options(void)
{
	GMimeFormatOptions *o = g_mime_format_options_new();

	g_mime_format_options_set_newline_format(o, GMIME_NEWLINE_FORMAT_DOS);
	return o;
}

int
mime_parse(const unsigned char *data, size_t len, GMimeMessage **msg_r,
    struct smime_error *err)
{
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *msg;

	*msg_r = NULL;
	if (len == 0)
		return smime_error_set(err, SMIME_E_INPUT, "the message is empty");
	stream = g_mime_stream_mem_new_with_buffer((const char *)data, len);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (msg == NULL || g_mime_message_get_mime_part(msg) == NULL) {
		if (msg != NULL)
			g_object_unref(msg);
		return smime_error_set(err, SMIME_E_INPUT,
		    "not an RFC 5322 message: no header section could be read");
	}
	*msg_r = msg;
	return 0;
}

int
mime_parse_stream(GMimeStream *stream, GMimeMessage **msg_r, struct smime_error *err)
{
	GMimeParser *parser;
	GMimeMessage *msg;

	*msg_r = NULL;
	g_mime_stream_reset(stream);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	/* Part contents stay on the (seekable) stream: never copied into memory. */
	g_mime_parser_set_persist_stream(parser, TRUE);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	if (msg == NULL || g_mime_message_get_mime_part(msg) == NULL) {
		if (msg != NULL)
			g_object_unref(msg);
		return smime_error_set(err, SMIME_E_INPUT,
		    "not an RFC 5322 message: no header section could be read");
	}
	*msg_r = msg;
	return 0;
}

/* Append s to out with every line end made CRLF; ensure a final CRLF. */
static int
add_crlf(struct buf *out, const char *s, size_t n, bool final_newline,
    struct smime_error *err)
{
	size_t i, start = 0;
	int rc;

	for (i = 0; i < n; i++) {
		if (s[i] != '\n')
			continue;
		size_t end = i;
		if (end > start && s[end - 1] == '\r')
			end--;
		if ((rc = buf_add(out, s + start, end - start, err)) != 0 ||
		    (rc = buf_add(out, "\r\n", 2, err)) != 0)
			return rc;
		start = i + 1;
	}
	if (start < n) {
		size_t end = n;
		if (s[end - 1] == '\r')
			end--;
		if ((rc = buf_add(out, s + start, end - start, err)) != 0)
			return rc;
		if (final_newline && (rc = buf_add(out, "\r\n", 2, err)) != 0)
			return rc;
	}
	return 0;
}

static bool
is_content_header(const char *name)
{
	return g_ascii_strncasecmp(name, "Content-", 8) == 0 ||
	    g_ascii_strcasecmp(name, "MIME-Version") == 0;
}

int
mime_outer_headers(GMimeMessage *msg, struct buf *out, struct smime_error *err)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int i, count = g_mime_header_list_get_count(hl), rc;

	for (i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		const char *raw = g_mime_header_get_raw_value(h);

		if (is_content_header(name))
			continue;
		if (raw == NULL)
			raw = "";
		if ((rc = buf_adds(out, name, err)) != 0 ||
		    (rc = buf_add(out, ":", 1, err)) != 0)
			return rc;
		if (raw[0] != ' ' && raw[0] != '\t' && (rc = buf_add(out, " ", 1, err)) != 0)
			return rc;
		if ((rc = add_crlf(out, raw, strlen(raw), true, err)) != 0)
			return rc;
		if (out->len < 2 || memcmp(out->data + out->len - 2, "\r\n", 2) != 0) {
			if ((rc = buf_add(out, "\r\n", 2, err)) != 0)
				return rc;
		}
	}
	return 0;
}

int
mime_entity(GMimeObject *obj, bool canonicalise, struct buf *out, struct smime_error *err)
{
	GMimeFormatOptions *opts = dos_options();
	GByteArray *arr = g_byte_array_new();
	GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(arr);
	GMimeHeaderList *hl;
	int rc = 0;

	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), TRUE);
	if (canonicalise)
		g_mime_object_encode(obj, GMIME_ENCODING_CONSTRAINT_7BIT);
	/*
	 * RFC 2045 5.2: an entity without Content-Type is text/plain in
	 * US-ASCII; when signing or encrypting, say so explicitly so that the
	 * receiver need not guess.
	 */
	hl = g_mime_object_get_header_list(obj);
	if (canonicalise && g_mime_header_list_get_count(hl) == 0 && GMIME_IS_PART(obj))
		g_mime_object_set_header(obj, "Content-Type", "text/plain; charset=us-ascii", NULL);
	if (g_mime_object_write_to_stream(obj, opts, mem) < 0)
		rc = smime_error_set(err, SMIME_E_INTERNAL, "cannot serialise a MIME entity");
	else
		rc = add_crlf(out, (const char *)arr->data, arr->len, false, err);
	g_object_unref(mem);
	g_mime_format_options_free(opts);
	return rc;
}

int
mime_part_content(GMimePart *part, size_t max, struct buf *out, struct smime_error *err)
{
	BIO *b = part_content_bio(part);
	unsigned char chunk[16384];
	size_t total = 0;
	int n, rc = 0;

	if (b == NULL)
		return smime_error_set(err, SMIME_E_INPUT, "a MIME part has no content");
	while ((n = BIO_read(b, chunk, sizeof(chunk))) > 0) {
		/* Bounded as it is read: nothing beyond max is ever held. */
		if ((size_t)n > max - total) {
			rc = smime_error_set(err, SMIME_E_INPUT,
			    "a MIME part exceeds the limit of %zu bytes", max);
			break;
		}
		total += (size_t)n;
		if ((rc = buf_add(out, chunk, (size_t)n, err)) != 0)
			break;
	}
	if (rc == 0 && n < 0)
		rc = smime_error_set(err, SMIME_E_INPUT, "cannot decode a MIME part");
	BIO_free(b);
	return rc;
}

char *
mime_type_of(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	char *t;

	if (ct == NULL)
		return g_strdup("text/plain");
	t = g_mime_content_type_get_mime_type(ct);
	for (char *p = t; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return t;
}

void
strv_free(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* Append the mailboxes of list (and of its groups) to *v, lower case and unique. */
static void
collect(InternetAddressList *list, char ***v, size_t *n, int depth)
{
	int i, count;

	if (list == NULL || depth > 2)
		return;
	count = internet_address_list_length(list);
	for (i = 0; i < count && *n < SMIME_MSG_MAX_RECIPIENTS; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			collect(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
			    v, n, depth + 1);
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		if (a == NULL || strchr(a, '@') == NULL)
			continue;
		char *low = g_ascii_strdown(a, -1);
		char *dup = strdup(low);
		g_free(low);
		if (dup == NULL)
			continue;
		if (strv_has(*v, *n, dup)) {
			free(dup);
			continue;
		}
		char **nv = realloc(*v, (*n + 1) * sizeof(char *));
		if (nv == NULL) {
			free(dup);
			continue;
		}
		*v = nv;
		(*v)[(*n)++] = dup;
	}
}

char **
mime_from_addresses(GMimeMessage *msg, size_t *n_r)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int i, count = g_mime_header_list_get_count(hl);
	char **v = NULL;
	size_t n = 0;

	/* Every From header counts: two of them must not hide one (RFC 5322 3.6). */
	for (i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "From") != 0)
			continue;
		InternetAddressList *l = internet_address_list_parse(NULL,
		    g_mime_header_get_value(h));
		collect(l, &v, &n, 0);
		if (l != NULL)
			g_object_unref(l);
	}
	*n_r = n;
	return v;
}

char **
mime_recipient_addresses(GMimeMessage *msg, size_t *n_r)
{
	char **v = NULL;
	size_t n = 0;

	collect(g_mime_message_get_to(msg), &v, &n, 0);
	collect(g_mime_message_get_cc(msg), &v, &n, 0);
	*n_r = n;
	return v;
}

int
mime_base64(const unsigned char *p, size_t n, struct buf *out, struct smime_error *err)
{
	unsigned char line[80];
	size_t off;
	int k, rc;

	for (off = 0; off < n; off += 57) {
		size_t take = n - off < 57 ? n - off : 57;
		k = EVP_EncodeBlock(line, p + off, (int)take);
		if ((rc = buf_add(out, line, (size_t)k, err)) != 0 ||
		    (rc = buf_add(out, "\r\n", 2, err)) != 0)
			return rc;
	}
	return 0;
}

void
mime_boundary(char out[40])
{
	unsigned char r[12];

	if (RAND_bytes(r, sizeof(r)) != 1)
		memset(r, 0x5a, sizeof(r));
	snprintf(out, 40, "=_smime_%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]);
}

char *
mime_from_spoofed_name(GMimeMessage *msg)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int i, count = g_mime_header_list_get_count(hl);
	char *found = NULL;

	for (i = 0; i < count && found == NULL; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		if (g_ascii_strcasecmp(g_mime_header_get_name(h), "From") != 0)
			continue;
		InternetAddressList *l = internet_address_list_parse(NULL, g_mime_header_get_value(h));
		for (int k = 0; l != NULL && k < internet_address_list_length(l) && found == NULL; k++) {
			InternetAddress *ia = internet_address_list_get_address(l, k);
			const char *name = internet_address_get_name(ia);
			const char *addr = INTERNET_ADDRESS_IS_MAILBOX(ia) ?
			    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)) : NULL;
			/* A display name that is itself an address other than the real one. */
			if (name != NULL && strchr(name, '@') != NULL &&
			    (addr == NULL || g_ascii_strcasecmp(name, addr) != 0))
				found = strdup(name);
		}
		if (l != NULL)
			g_object_unref(l);
	}
	return found;
}
