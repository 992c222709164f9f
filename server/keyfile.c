/* smimed: key files, sealing under them, PKCS#8 (keyfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "keyfile.h"

#define KEYFILE_PATH_MAX 4096

/* Read (or write) all len octets, through short counts and EINTR. */
static int
io_all(int fd, unsigned char *buf, size_t len, bool writing)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = writing ? write(fd, buf + done, len - done) : read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* fsync the folder holding path, so that a new entry in it is durable. */
static int
sync_folder(const char *path, struct smime_error *err)
{
	char dir[KEYFILE_PATH_MAX];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return smime_error_set(err, SMIME_E_IO, "%s: %s", dir, strerror(errno));
	if (fsync(fd) != 0)
		rc = smime_error_set(err, SMIME_E_IO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

/*
 * Make a new master key file at path.  SMIME_E_EXISTS when one is there
 * already (another process was first): then read that one.
 */
static int
key_create(const char *path, struct smime_error *err)
{
	unsigned char key[KEYFILE_LEN];
	int fd = -1, rc = 0;

	if (RAND_priv_bytes(key, sizeof(key)) != 1)
		return smime_error_ssl(err, SMIME_E_CRYPTO, "key file: random octets");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = smime_error_set(err, errno == EEXIST ? SMIME_E_EXISTS : SMIME_E_IO,
		    "key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (io_all(fd, key, sizeof(key), true) != 0 || fsync(fd) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = smime_error_set(err, SMIME_E_IO, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	rc = sync_folder(path, err);
out:
	if (fd >= 0)
		close(fd);
	/* O_EXCL made the file ours: a partial one would be refused for ever. */
	if (rc != 0 && rc != SMIME_E_EXISTS)
		unlink(path);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static int
key_read(const char *path, unsigned char key[KEYFILE_LEN], struct smime_error *err)
{
	struct stat st;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return smime_error_set(err, errno == ENOENT ? SMIME_E_NOTFOUND : SMIME_E_IO,
		    "key file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "key file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = smime_error_set(err, SMIME_E_IO, "key file %s: not a regular file", path);
		goto out;
	}
	/* DESIGN: files holding secrets are 0600; anything wider is refused. */
	if ((st.st_mode & 07777 & ~(mode_t)0600) != 0) {
		rc = smime_error_set(err, SMIME_E_POLICY, "key file %s: mode %04o is wider "
		    "than 0600", path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size != KEYFILE_LEN) {
		rc = smime_error_set(err, SMIME_E_INPUT, "key file %s: %lld octets, a key file "
		    "has %d", path, (long long)st.st_size, KEYFILE_LEN);
		goto out;
	}
	if (io_all(fd, key, KEYFILE_LEN, false) != 0) {
		rc = smime_error_set(err, SMIME_E_IO, "key file %s: short read", path);
		goto out;
	}
out:
	close(fd);
	return rc;
}

/* key as PKCS#8 PrivateKeyInfo DER; *der_r: caller frees with OPENSSL_clear_free. */
int
pkcs8_encode(EVP_PKEY *key, unsigned char **der_r, size_t *len_r, struct smime_error *err)
{
	PKCS8_PRIV_KEY_INFO *p8;
	unsigned char *der = NULL;
	int len;

	*der_r = NULL;
	*len_r = 0;
	if ((p8 = EVP_PKEY2PKCS8(key)) == NULL)
		return smime_error_ssl(err, SMIME_E_USAGE, "not a private key");
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (len <= 0)
		return smime_error_ssl(err, SMIME_E_INTERNAL, "PKCS#8 encoding");
	*der_r = der;
	*len_r = (size_t)len;
	return 0;
}

EVP_PKEY *
pkcs8_decode(const unsigned char *der, size_t len)
{
	PKCS8_PRIV_KEY_INFO *p8;
	const unsigned char *p = der;
	EVP_PKEY *key = NULL;

	if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len)) == NULL)
		return NULL;
	if (p == der + len)
		key = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	return key;
}

int
keyfile_load(const char *path, bool create, unsigned char key[KEYFILE_LEN],
    struct smime_error *err)
{
	int rc;

	if (path == NULL || path[0] == '\0' || strnlen(path, KEYFILE_PATH_MAX) >= KEYFILE_PATH_MAX)
		return smime_error_set(err, SMIME_E_USAGE, "key file: no path");
	rc = key_read(path, key, err);
	if (rc == SMIME_E_NOTFOUND && create) {
		rc = key_create(path, err);
		/* EXISTS: another process made it first; read that one. */
		if (rc == 0 || rc == SMIME_E_EXISTS)
			rc = key_read(path, key, err);
	}
	return rc;
}

int
seal_bytes(const unsigned char key[KEYFILE_LEN], const char magic[SEAL_MAGIC_LEN],
    const char *aad, const unsigned char *in, size_t len, size_t max,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *out = NULL, *nonce, *ct, *tag;
	size_t out_len;
	int n, rc = 0;

	*out_r = NULL;
	*out_len_r = 0;
	if (len == 0 || len > max || len > INT_MAX - SEAL_OVERHEAD)
		return smime_error_set(err, SMIME_E_USAGE, "seal: %zu octets cannot be sealed", len);
	out_len = SEAL_OVERHEAD + len;
	if ((out = malloc(out_len)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	memcpy(out, magic, SEAL_MAGIC_LEN);
	nonce = out + SEAL_MAGIC_LEN;
	ct = nonce + SEAL_NONCE_LEN;
	tag = ct + len;
	if (RAND_bytes(nonce, SEAL_NONCE_LEN) != 1) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "seal: random nonce");
		goto out;
	}
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, in, (int)len) != 1 || (size_t)n != len ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 || n != 0 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, SEAL_TAG_LEN, tag) != 1) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "seal: AES-256-GCM");
		goto out;
	}
	*out_r = out;
	*out_len_r = out_len;
	out = NULL;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(out);
	return rc;
}

int
open_bytes(const unsigned char key[KEYFILE_LEN], const char magic[SEAL_MAGIC_LEN],
    const char *aad, const unsigned char *in, size_t len, size_t max,
    unsigned char **out_r, size_t *out_len_r, struct smime_error *err)
{
	EVP_CIPHER_CTX *ctx = NULL;
	const unsigned char *nonce, *ct, *tag;
	unsigned char *out = NULL;
	size_t out_len;
	int n, rc = 0;

	*out_r = NULL;
	*out_len_r = 0;
	if (in == NULL || len <= SEAL_OVERHEAD || len - SEAL_OVERHEAD > max)
		return smime_error_set(err, SMIME_E_INPUT, "sealed %s: %zu octets, not a sealed "
		    "blob", aad, in != NULL ? len : 0);
	if (memcmp(in, magic, SEAL_MAGIC_LEN) != 0)
		return smime_error_set(err, SMIME_E_INPUT, "sealed %s: it does not begin with "
		    "\"%.4s\"", aad, magic);
	nonce = in + SEAL_MAGIC_LEN;
	ct = nonce + SEAL_NONCE_LEN;
	out_len = len - SEAL_OVERHEAD;
	tag = ct + out_len;
	if ((out = malloc(out_len)) == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) != 1 ||
	    EVP_DecryptUpdate(ctx, out, &n, ct, (int)out_len) != 1 || (size_t)n != out_len ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SEAL_TAG_LEN,
	    (void *)(uintptr_t)tag) != 1) {
		rc = smime_error_ssl(err, SMIME_E_INTERNAL, "sealed %s: cipher", aad);
		goto out;
	}
	if (EVP_DecryptFinal_ex(ctx, out + n, &n) != 1) {
		rc = smime_error_ssl(err, SMIME_E_CRYPTO, "sealed %s: the GCM tag does not verify "
		    "(another key, another owner, or damage)", aad);
		goto out;
	}
	*out_r = out;
	*out_len_r = out_len;
	out = NULL;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_clear_free(out, out_len);
	return rc;
}
