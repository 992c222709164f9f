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
#include "settings.h"

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
