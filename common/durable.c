/* Durable small-file writes (durable.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"

/* fsync the folder that holds path, so that the rename itself is durable. */
static int
sync_parent(const char *path, struct smime_error *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", dir, strerror(errno));
	if (fsync(fd) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

int
durable_write(const char *path, const void *data, size_t len, struct smime_error *err)
{
	char tmp[PATH_MAX];
	const unsigned char *p = data;
	size_t done = 0;
	int fd, rc = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp))
		return smime_error_set(err, SMIME_E_USAGE, "%s: the path is too long", path);
	/* mkstemp makes the file 0600 and refuses one that is there (no link
	 * followed). */
	if ((fd = mkstemp(tmp)) < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = smime_error_set(err, SMIME_E_IO, "%s: %s", tmp,
			    w < 0 ? strerror(errno) : "nothing written");
			break;
		}
		done += (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: fsync: %s", tmp, strerror(errno));
	if (close(fd) != 0 && rc == 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, path) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: %s", path, strerror(errno));
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	return sync_parent(path, err);
}
