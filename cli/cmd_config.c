/*
 * smime config: the keystore's settings, in the file "settings" of the
 * keystore folder (one NAME=VALUE a line, 0600, replaced atomically).
 *
 * prefer-gcm  yes | no (default no): encrypt with AES-256-GCM
 *             (AuthEnvelopedData) to recipients who announced nothing, as an
 *             organisation whose mail clients all read it may choose; a
 *             recipient who announced capabilities without GCM still gets
 *             AES-CBC.  By default GCM is used only when every recipient
 *             announced it (see smime-encrypt(1)).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define SETTINGS_FILE "settings"
#define SETTINGS_MAX  4096  /* octets of the file */

static const struct {
	const char *name;
	const char *values[3];
	const char *help;
} known[] = {
	{ "prefer-gcm", { "yes", "no", NULL },
	  "AES-256-GCM for recipients who announced nothing (default no: AES-256-CBC)" },
};

static int
known_index(const char *name)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Read the settings file of dir into buf[SETTINGS_MAX + 1]; "" when there is none. */
static int
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

/* The value of name in the settings text s, into val[size]; false when not set. */
static bool
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

/* Write the settings text s as the new file, atomically. */
static int
settings_write(const char *dir, const char *s, struct smime_error *err)
{
	char path[4200], tmp[4300];
	size_t len = strlen(s);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, SETTINGS_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
	if (write(fd, s, len) != (ssize_t)len || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(e));
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(e));
	}
	return 0;
}

static void
help_config(FILE *f)
{
	fprintf(f, "usage: smime config [NAME [VALUE]]\n"
	    "       smime config --unset NAME\n\n"
	    "Show or change the settings of the keystore (the file \"settings\" in its\n"
	    "folder).  Without NAME, every setting and its value; with NAME, its value;\n"
	    "with NAME VALUE, set it.\n\nsettings:\n");
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		fprintf(f, "  %-11s %s|%s: %s\n", known[i].name, known[i].values[0],
		    known[i].values[1], known[i].help);
}

int
cmd_config(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "unset", no_argument, NULL, 'u' },
		GLOBAL_LONG_OPTIONS, { NULL, 0, NULL, 0 },
	};
	struct smime_keystore *ks = NULL;
	struct smime_error err;
	char buf[SETTINGS_MAX + 1], val[256];
	bool unset = false;
	int c, k, rc;

	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (c == 'h') {
			help_config(stdout);
			return EXIT_OK;
		}
		if (c == 'u')
			unset = true;
		else if (!global_option(c, optarg))
			return usage_error("config", "unknown option");
	}
	if (argc - optind > 2 || (unset && argc - optind != 1))
		return usage_error("config", "give NAME [VALUE], or --unset NAME");
	if (optind < argc && (k = known_index(argv[optind])) < 0)
		return usage_error("config", "unknown setting '%s' (see smime config --help)",
		    argv[optind]);
	if (argc - optind == 2) {
		k = known_index(argv[optind]);
		if (strcmp(argv[optind + 1], known[k].values[0]) != 0 &&
		    strcmp(argv[optind + 1], known[k].values[1]) != 0)
			return usage_error("config", "%s is %s or %s", known[k].name,
			    known[k].values[0], known[k].values[1]);
	}
	if ((rc = open_keystore("config", argc - optind == 2, &ks)) != EXIT_OK)
		return rc;
	if (settings_read(smime_keystore_dir(ks), buf, &err) != 0) {
		rc = fail("config", &err);
		goto out;
	}
	if (argc - optind == 2 || unset) {
		/* The other known settings, then this one. */
		char next[SETTINGS_MAX + 1];
		size_t used = 0;
		next[0] = '\0';
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			if (strcmp(known[i].name, argv[optind]) == 0 ||
			    !settings_find(buf, known[i].name, val, sizeof(val)))
				continue;
			used += (size_t)snprintf(next + used, sizeof(next) - used, "%s=%s\n",
			    known[i].name, val);
		}
		if (!unset)
			snprintf(next + used, sizeof(next) - used, "%s=%s\n", argv[optind],
			    argv[optind + 1]);
		if (settings_write(smime_keystore_dir(ks), next, &err) != 0) {
			rc = fail("config", &err);
			goto out;
		}
		rc = EXIT_OK;
		goto out;
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (optind < argc && strcmp(known[i].name, argv[optind]) != 0)
			continue;
		if (!settings_find(buf, known[i].name, val, sizeof(val)))
			snprintf(val, sizeof(val), "%s", known[i].values[1]);
		if (optind < argc)
			printf("%s\n", val);
		else
			printf("%s=%s\n", known[i].name, val);
	}
	rc = EXIT_OK;
out:
	smime_keystore_free(ks);
	return rc;
}
