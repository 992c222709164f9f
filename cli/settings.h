/*
 * smime: the keystore's settings file, "settings" in the keystore folder:
 * one NAME=VALUE a line, at most SETTINGS_MAX octets.  The command that
 * shows and changes it is smime config (cmd_config.c).
 */
#ifndef SMIME_CLI_SETTINGS_H
#define SMIME_CLI_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <smime/error.h>
#include <smime/keystore.h>

#define SETTINGS_MAX 4096  /* octets of the file */

/* Read the settings file of dir into buf[SETTINGS_MAX + 1] ("" when there
 * is none); SMIME_E_INPUT when it is larger than SETTINGS_MAX. */
int settings_read(const char *dir, char *buf, struct smime_error *err);
/* The value of name in the NUL-terminated settings text s, into val[size]
 * (cut to size - 1 octets); false when it is not set. */
bool settings_find(const char *s, const char *name, char *val, size_t size);
/* The value of the setting name of ks into val[size]; "" when not set. */
int settings_get(struct smime_keystore *ks, const char *name, char *val, size_t size,
    struct smime_error *err);
/* Write the settings text s as the new file of dir, atomically (0600). */
int settings_write(const char *dir, const char *s, struct smime_error *err);

#endif
