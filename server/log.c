/*
 * smimed: structured log lines on stderr.  One line per request and per
 * event, written whole under a lock: JSON objects by default, key=value
 * pairs with log_format = text.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
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
			json_object_set_new(o, k, json_string(v != NULL ? v : ""));
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
			fprintf(f, " %s=", k);
			text_value(f, v != NULL ? v : "");
		}
		fclose(f);
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "%s\n", line);
		pthread_mutex_unlock(&log_lock);
		free(line);
	}
	va_end(ap);
}
