/*
 * smimed: structured log lines on stderr.  One line per request and per
 * event, written whole under a lock: JSON objects by default, key=value
 * pairs with log_format = text.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <jansson.h>

#include "service.h"

static bool log_json = true;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_init(bool json)
{
	log_json = json;
}

bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned char c = *p;
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else
			return false;
		if ((size_t)(end - p) <= k)
			return false;
		for (size_t i = 1; i <= k; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* Shortest form only, no surrogates, nothing past U+10FFFF. */
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += k + 1;
	}
	return true;
}

void
text_scrub(char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (c >= 0x80 && (k == 1 || i + k > n || !utf8_valid(s + i, k))) {
			s[i++] = '?';
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			s[i] = '?';
		i += c >= 0x80 ? k : 1;
	}
}

static void
text_value(FILE *f, const char *v)
{
	bool quote = *v == '\0' || strpbrk(v, " \"=\t\n\\") != NULL;
	if (!quote) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (; *v != '\0'; v++) {
		if (*v == '"' || *v == '\\')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

void
log_event(const char *level, const char *event, ...)
{
	struct timeval tv;
	struct tm tm;
	char when[64];
	va_list ap;
	char *line = NULL;
	size_t len = 0;
	FILE *f;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
	va_start(ap, event);
	if (log_json) {
		json_t *o = json_object();
		json_object_set_new(o, "time", json_string(when));
		json_object_set_new(o, "level", json_string(level));
		json_object_set_new(o, "event", json_string(event));
		for (;;) {
			const char *k = va_arg(ap, const char *);
			if (k == NULL)
				break;
			const char *v = va_arg(ap, const char *);
			/* Values come from outside (paths, messages): what is not
			 * UTF-8 or is a control character is replaced, never dropped. */
			char *copy = strdup(v != NULL ? v : "");
			if (copy != NULL) {
				text_scrub(copy);
				json_object_set_new(o, k, json_string(copy));
				free(copy);
			}
		}
		line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (line != NULL) {
			pthread_mutex_lock(&log_lock);
			fprintf(stderr, "%s\n", line);
			pthread_mutex_unlock(&log_lock);
			free(line);
		}
	} else if ((f = open_memstream(&line, &len)) != NULL) {
		fprintf(f, "time=%s level=%s event=%s", when, level, event);
		for (;;) {
			const char *k = va_arg(ap, const char *);
			if (k == NULL)
				break;
			const char *v = va_arg(ap, const char *);
			char *copy = strdup(v != NULL ? v : "");
			fprintf(f, " %s=", k);
			if (copy != NULL) {
				text_scrub(copy);
				text_value(f, copy);
				free(copy);
			}
		}
		fclose(f);
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "%s\n", line);
		pthread_mutex_unlock(&log_lock);
		free(line);
	}
	va_end(ap);
}
