/*
 * The keystore's settings file (settings.h): one NAME=VALUE a line, at
 * most SETTINGS_MAX octets, 0600, replaced atomically.  Its reader is a
 * parser of a file a user may edit by hand: bounded, and fuzzed
 * (fuzz/fuzz_settings.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"
#include "settings.h"

#define SETTINGS_FILE "settings"

int
settings_read(const char *dir, char *buf, struct smime_error *err)
{
	char path[4200];
	ssize_t n;
	size_t len = 0;
	int fd;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, SETTINGS_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT)
			return 0;
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	}
	while ((n = read(fd, buf + len, SETTINGS_MAX + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	if (len > SETTINGS_MAX)
		return smime_error_set(err, SMIME_E_INPUT, "%s: larger than %d octets", path,
		    SETTINGS_MAX);
	buf[len] = '\0';
	return 0;
}

bool
settings_find(const char *s, const char *name, char *val, size_t size)
{
	size_t nl = strlen(name);

	while (*s != '\0') {
		size_t l = strcspn(s, "\n");
		if (l > nl && strncmp(s, name, nl) == 0 && s[nl] == '=') {
			snprintf(val, size, "%.*s", (int)(l - nl - 1), s + nl + 1);
			return true;
		}
		s += l;
		if (*s == '\n')
			s++;
	}
	return false;
}

int
settings_get(struct smime_keystore *ks, const char *name, char *val, size_t size,
    struct smime_error *err)
{
	char buf[SETTINGS_MAX + 1];
	int rc;

	val[0] = '\0';
	if ((rc = settings_read(smime_keystore_dir(ks), buf, err)) != 0)
		return rc;
	if (!settings_find(buf, name, val, size))
		val[0] = '\0';
	return 0;
}

int
settings_write(const char *dir, const char *s, struct smime_error *err)
{
	char path[4200];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, SETTINGS_FILE) >= sizeof(path))
		return smime_error_set(err, SMIME_E_USAGE, "%s: the path is too long", dir);
	return durable_write(path, s, strlen(s), err);
}

