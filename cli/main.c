/* smime: the command line of users, devices and admins.  main() only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct globals g;

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "sign", cmd_sign, "sign a message (clear-signed by default, --opaque)" },
	{ "encrypt", cmd_encrypt, "encrypt a message to its recipients (and --sign it first)" },
	{ "decrypt", cmd_decrypt, "decrypt a message with a key from the keystore" },
	{ "verify", cmd_verify, "verify a signed message and report every signer" },
	{ "open", cmd_open, "decrypt and verify whatever nesting arrives" },
	{ "import", cmd_import, "import certificates and keys (PKCS#12, PEM, DER, PKCS#7, SST, .eml)" },
	{ "export", cmd_export, "export identities as PKCS#12, or certificates as certs-only" },
	{ "list", cmd_list, "list the keystore" },
	{ "config", cmd_config, "show or change the keystore's settings (prefer-gcm)" },
	{ "inspect", cmd_inspect, "show the MIME and CMS structure of a message, without keys" },
	{ "enroll", cmd_enroll, "get a signing certificate from a SCEP server, or --renew it" },
	{ "admin", cmd_admin, "manage a smimed service: users, devices, certificates, CAs" },
};

static void
help(FILE *f)
{
	fprintf(f, "usage: smime [--home DIR] [--passphrase-file FILE] [--json] COMMAND [OPTIONS]\n\n"
	    "Sign, encrypt, decrypt and verify S/MIME mail (RFC 8551).\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nglobal options (accepted before or after the command):\n"
	    "  --home DIR              keystore folder (else $SMIME_HOME, else\n"
	    "                          $XDG_DATA_HOME/smime, else ~/.local/share/smime)\n"
	    "  --passphrase-file FILE  keystore passphrase (else $SMIME_PASSPHRASE, else a prompt)\n"
	    "  --json                  machine-readable report on standard output or error\n"
	    "  -q, --quiet             no report on standard error\n"
	    "  -h, --help              this help; 'smime COMMAND --help' for a command\n"
	    "  --version               the version\n\n"
	    "exit status: 0 success; 1 signature or certificate invalid, an integrity check\n"
	    "failed, or a wrong password or passphrase; 2 usage; 3 malformed input; 4 no key or certificate; 5 refused by policy;\n"
	    "6 valid signature with a warning; 7 input/output or internal error;\n"
	    "8 (enroll) refused by the CA; 9 (enroll) still waiting for approval.\n"
	    "Messages are read from -i FILE or standard input and written to -o FILE or\n"
	    "standard output.  See smime(1) and smime-COMMAND(1).\n");
}

int
main(int argc, char **argv)
{
	int i;

	smime_init();
	/* Global options before the command. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--home") == 0 && i + 1 < argc)
			g.home = argv[++i];
		else if (strncmp(a, "--home=", 7) == 0)
			g.home = a + 7;
		else if (strcmp(a, "--passphrase-file") == 0 && i + 1 < argc)
			g.passphrase_file = argv[++i];
		else if (strncmp(a, "--passphrase-file=", 18) == 0)
			g.passphrase_file = a + 18;
		else if (strcmp(a, "--json") == 0)
			g.json = true;
		else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
			g.quiet = true;
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help(stdout);
			return EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("smime %s\n", SMIME_VERSION);
			return EXIT_OK;
		} else
			break;
	}
	if (i >= argc) {
		help(stderr);
		return EXIT_USAGE;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0)
			return commands[k].fn(argc - i, argv + i);
	fprintf(stderr, "smime: unknown command '%s' (see smime --help)\n", argv[i]);
	return EXIT_USAGE;
}
