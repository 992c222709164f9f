/*
 * Durable small-file writes, the one way smime and smimed replace a file
 * that holds settings or secrets: a 0600 temporary file beside it, written
 * whole and synced, renamed over the file, and the folder synced, so that a
 * crash leaves the old file or the new one, never a part.
 */
#ifndef SMIME_DURABLE_H
#define SMIME_DURABLE_H

#include <stddef.h>

#include <smime/error.h>

/* Replace path with the len octets of data (mode 0600).  Returns 0, or
 * SMIME_E_IO with err naming the file and the system's reason (the
 * temporary file is removed and path is left as it was); SMIME_E_USAGE when
 * the path is too long. */
int durable_write(const char *path, const void *data, size_t len, struct smime_error *err);

#endif
