/*
 * smime: recipients' certificates from a source outside the keystore
 * (smime encrypt --lookup, --ldap): the one loop that asks a source about
 * each address, and the one validation of what it answers.
 *
 * Every source is untrusted.  A certificate it offers is taken only when it
 * passes the checks the keystore applies to a contact (the recipient's
 * address, encryption key usage, EKU emailProtection, valid now) and
 * chains to a trust anchor of the keystore; the other certificates of the
 * answer may serve as intermediates of that chain, never as anchors.  What
 * passes is added to the contacts, with the intermediates of its chain.
 */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cli.h"

/* RFC 5321 4.5.3.1: local part 64 octets, a path 256 (254 without the brackets). */
#define ADDR_MAX_LOCAL    64
#define ADDR_MAX          254

/* What became of one address. */
struct recipient_lookup {
	const char *address;
	const char *label;       /* the source's, for messages */
	const char *status;      /* found, not-found, refused, error, invalid-address, skipped */
	char reason[SMIME_ERROR_MAX];
	json_t *certs;           /* the certificates added: [{fingerprint, subject, added}] */
	json_t *refused;         /* [{fingerprint, subject, reason}] or [{value, reason}] */
};

static void
str_free(char *s)
{
	OPENSSL_free(s);
}

/* "smime encrypt: LABEL: message" on stderr, without the source's control characters. */
static void
say(const char *label, const char *fmt, ...) SMIME_PRINTF(2, 3);

static void
say(const char *label, const char *fmt, ...)
{
	char buf[2 * SMIME_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	admin_sanitize(buf);
	fprintf(stderr, "smime encrypt: %s: %s\n", label, buf);
}

void
recipient_refuse_value(struct recipient_lookup *l, const char *what, const char *why)
{
	json_array_append_new(l->refused, json_pack("{s:s,s:s}", "value", what, "reason", why));
	if (!g.json)
		say(l->label, "%s: refused %s: %s", l->address, what, why);
	snprintf(l->reason, sizeof(l->reason), "%s: %s", what, why);
}

/* --- addresses ------------------------------------------------------------- */

/* RFC 5322 3.2.3 atext, with RFC 6532 3.2's UTF-8 octets. */
static bool
atext(unsigned char c)
{
	return isalnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * A mailbox a source may be asked about: dot-atom@domain (RFC 5322 3.4.1
 * without quoted local parts or domain literals), within RFC 5321's
 * lengths.  Anything else is refused before it reaches a filter or a URL.
 */
static bool
address_ok(const char *a, const char **why)
{
	const char *at = strchr(a, '@'), *p;
	size_t len = strlen(a), label = 0;

	if (len > ADDR_MAX) {
		*why = "longer than 254 octets (RFC 5321 4.5.3.1.3)";
		return false;
	}
	if (at == NULL || strchr(at + 1, '@') != NULL || at == a || at[1] == '\0') {
		*why = "not one local part, one @ and one domain";
		return false;
	}
	if ((size_t)(at - a) > ADDR_MAX_LOCAL) {
		*why = "a local part longer than 64 octets (RFC 5321 4.5.3.1.1)";
		return false;
	}
	/* RFC 5322 3.2.3: dot-atom-text = 1*atext *("." 1*atext) */
	for (p = a; p < at; p++) {
		if (*p == '.' ? (p == a || p + 1 == at || p[1] == '.') : !atext((unsigned char)*p)) {
			*why = "the local part is not a dot-atom (RFC 5322 3.2.3): quoted local "
			    "parts, spaces, parentheses, backslashes and control characters are "
			    "not looked up";
			return false;
		}
	}
	/* RFC 5321 4.1.2: Domain = sub-domain *("." sub-domain), Let-dig [Ldh-str] */
	for (p = at + 1; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-') {
				*why = "the domain is not a sequence of host name labels (RFC 5321 4.1.2)";
				return false;
			}
			if (*p == '\0')
				break;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80 ||
		    (*p == '-' && label > 0))) {
			*why = "the domain is not a sequence of host name labels (RFC 5321 4.1.2)";
			return false;
		}
		label++;
	}
	return true;
}

/* --- validation --------------------------------------------------------- */

/*
 * The leaf's key usage is the caller's check (keyAgreement counts for EC);
 * the keystore's distrust list is checked as in every validation.
 */
static int
verify_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_INVALID_PURPOSE &&
	    X509_STORE_CTX_get_error_depth(ctx) == 0)
		ok = 1;
	return smime_keystore_verify_cb(ok, ctx);
}

static const char *
iso_date(time_t t, char buf[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%d", &tm);
	return buf;
}

/*
 * Why cert may not be used to encrypt to address, or NULL when it may;
 * the chain goes into *chain_r (leaf first) when it is trusted.
 */
static const char *
cert_refusal(X509 *cert, const char *address, time_t now, X509_STORE *store,
    STACK_OF(X509) *untrusted, STACK_OF(X509) **chain_r, char *buf, size_t size)
{
	X509_STORE_CTX *ctx = NULL;
	int roles = smime_cert_roles(cert);
	char d1[32];

	*chain_r = NULL;
	/* RFC 8550 3: the address the mail goes to is in the certificate. */
	if (!smime_cert_has_email(cert, address)) {
		STACK_OF(OPENSSL_STRING) *em = smime_cert_emails(cert);
		size_t n = 0;
		n += (size_t)snprintf(buf, size, "it is for ");
		for (int i = 0; em != NULL && i < sk_OPENSSL_STRING_num(em) && n < size; i++)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "",
			    sk_OPENSSL_STRING_value(em, i));
		if (em == NULL || sk_OPENSSL_STRING_num(em) == 0)
			snprintf(buf + n, n < size ? size - n : 0, "no email address");
		else if (n < size)
			snprintf(buf + n, size - n, ", not %s", address);
		sk_OPENSSL_STRING_pop_free(em, str_free);
		return buf;
	}
	/* RFC 8550 4.4.2: key usage for encryption (keyEncipherment, keyAgreement). */
	if (!(roles & SMIME_ROLE_ENCRYPT))
		return "its key usage does not allow encryption (a signing-only certificate)";
	/* RFC 8550 4.4.4: EKU, when present, includes emailProtection. */
	if (!smime_cert_email_protection(cert))
		return "its extended key usage excludes email protection";
	if (!smime_cert_valid_at(cert, now)) {
		const ASN1_TIME *na = X509_get0_notAfter(cert);
		if (X509_cmp_time(na, &now) < 0) {
			struct tm tm;
			if (ASN1_TIME_to_tm(na, &tm))
				snprintf(buf, size, "it expired on %s", iso_date(timegm(&tm), d1));
			else
				snprintf(buf, size, "it expired");
		} else {
			snprintf(buf, size, "it is not valid yet");
		}
		return buf;
	}
	/* RFC 5280 6: a path to a trust anchor of the keystore. */
	ctx = X509_STORE_CTX_new();
	if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, cert, untrusted)) {
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return "cannot set up certificate verification";
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) != 1) {
		int e = X509_STORE_CTX_get_error(ctx);
		if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		    e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		    e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
			snprintf(buf, size, "it is not issued by a trust anchor of the keystore (%s)",
			    X509_verify_cert_error_string(e));
		else if (e == X509_V_ERR_CERT_REJECTED)
			snprintf(buf, size, "it or a CA of its chain is on the keystore's distrust "
			    "list");
		else
			snprintf(buf, size, "its chain does not verify: %s",
			    X509_verify_cert_error_string(e));
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return buf;
	}
	*chain_r = X509_STORE_CTX_get1_chain(ctx);
	X509_STORE_CTX_free(ctx);
	return NULL;
}

/*
 * Decide on the certificates the source offered for address (certs, the
 * candidates; extra, certificates that may only be intermediates), and add
 * those that pass, with the intermediates of their chains, to ks.
 */
static int
take_certs(const struct recipient_source *src, struct smime_keystore *ks, const char *address,
    STACK_OF(X509) *certs, STACK_OF(X509) *extra, X509_STORE *store,
    STACK_OF(X509) *ks_untrusted, struct recipient_lookup *l, struct smime_error *err)
{
	STACK_OF(X509) *untrusted = sk_X509_dup(ks_untrusted);
	time_t now = time(NULL);
	int rc = 0, taken = 0;

	if (untrusted == NULL)
		return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
	/* Everything the source gave may be an intermediate: used to build, never trusted. */
	for (int i = 0; i < sk_X509_num(certs) + sk_X509_num(extra); i++) {
		X509 *c = i < sk_X509_num(certs) ? sk_X509_value(certs, i) :
		    sk_X509_value(extra, i - sk_X509_num(certs));
		if (!sk_X509_push(untrusted, c)) {
			sk_X509_free(untrusted);
			return smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		}
	}
	for (int i = 0; i < sk_X509_num(certs) && rc == 0; i++) {
		X509 *c = sk_X509_value(certs, i);
		STACK_OF(X509) *chain = NULL;
		char fp[65], buf[SMIME_ERROR_MAX], *subject;
		const char *why;

		if (smime_cert_roles(c) & SMIME_ROLE_CA)
			continue;
		smime_cert_fingerprint(c, fp);
		subject = smime_cert_subject(c);
		why = cert_refusal(c, address, now, store, untrusted, &chain, buf, sizeof(buf));
		if (why != NULL) {
			json_array_append_new(l->refused, json_pack("{s:s,s:s?,s:s}", "fingerprint", fp,
			    "subject", subject, "reason", why));
			if (!g.json)
				say(src->label, "%s: refused SHA256:%.16s (%s): %s", address, fp,
				    subject ? subject : "?", why);
			snprintf(l->reason, sizeof(l->reason), "%s", why);
		} else {
			bool added = false;
			rc = smime_keystore_add(ks, c, NULL, SMIME_ENTRY_CONTACT, &added, err);
			/* The intermediates, below the anchor, help later chains as CA entries. */
			for (int k = 1; rc == 0 && k + 1 < sk_X509_num(chain); k++)
				rc = smime_keystore_add(ks, sk_X509_value(chain, k), NULL,
				    SMIME_ENTRY_CA, NULL, err);
			if (rc == 0) {
				taken++;
				json_array_append_new(l->certs, json_pack("{s:s,s:s?,s:b}", "fingerprint",
				    fp, "subject", subject, "added", added));
				if (!g.json && !g.quiet)
					say(src->label, "%s: %s SHA256:%.16s (%s)", address, added ?
					    "added to the contacts" : "already a contact", fp,
					    subject ? subject : "?");
			}
		}
		sk_X509_pop_free(chain, X509_free);
		OPENSSL_free(subject);
	}
	sk_X509_free(untrusted);
	if (rc != 0)
		return rc;
	if (taken > 0) {
		l->status = "found";
		l->reason[0] = '\0';
	} else if (json_array_size(l->refused) == 0) {
		l->status = "not-found";
		snprintf(l->reason, sizeof(l->reason), "no entry with a certificate");
	} else {
		l->status = "refused";
		if (json_array_size(l->refused) > 1)
			snprintf(l->reason, sizeof(l->reason), "none of the %zu %s for it is usable",
			    json_array_size(l->refused), src->offered);
	}
	return 0;
}

/* --- the lookup of a list of addresses ------------------------------ */

static void
lookup_done(const struct recipient_source *src, struct recipient_lookup *l, json_t *report)
{
	if (report != NULL) {
		json_t *j = json_pack("{s:s,s:s,s:s}", "address", l->address, "source", src->name,
		    "status", l->status);
		if (l->reason[0] != '\0')
			json_object_set_new(j, "reason", json_string(l->reason));
		if (json_array_size(l->certs) > 0)
			json_object_set(j, "certificates", l->certs);
		if (json_array_size(l->refused) > 0)
			json_object_set(j, "refused", l->refused);
		json_array_append_new(report, j);
	}
	json_decref(l->certs);
	json_decref(l->refused);
	l->certs = l->refused = NULL;
}

int
recipients_fetch(const struct recipient_source *src, void *ctx, struct smime_keystore *ks,
    const char *const *addrs, size_t n, json_t *report, bool *found)
{
	X509_STORE *store = NULL;
	STACK_OF(X509) *ks_untrusted = NULL;
	struct smime_error err;
	bool changed = false, opened = false, broken = false;
	struct sigaction ign, old_pipe;
	int rc = EXIT_OK;

	for (size_t i = 0; i < n; i++)
		found[i] = false;
	if (smime_keystore_trust(ks, &store, &ks_untrusted, &err) != 0)
		return fail("encrypt", &err);
	/* A server that closes the connection must not kill us with SIGPIPE. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	(void)sigaction(SIGPIPE, &ign, &old_pipe);
	for (size_t i = 0; i < n; i++) {
		struct recipient_lookup l = { .address = addrs[i], .label = src->label,
			.status = "error" };
		STACK_OF(X509) *certs = NULL, *extra = NULL;
		const char *why;
		int answers = 0, code;

		l.certs = json_array();
		l.refused = json_array();
		if (!address_ok(addrs[i], &why)) {
			/* Before any search: nothing of it reaches a filter or a URL. */
			l.status = "invalid-address";
			snprintf(l.reason, sizeof(l.reason), "not looked up: %s", why);
			if (!g.json)
				say(src->label, "%s: %s", addrs[i], l.reason);
			lookup_done(src, &l, report);
			continue;
		}
		if (broken) {
			l.status = "skipped";
			snprintf(l.reason, sizeof(l.reason), "not looked up: %s failed for an earlier "
			    "address", src->noun);
			lookup_done(src, &l, report);
			continue;
		}
		if (!opened && src->open(ctx, &err) != 0) {
			broken = true;
			snprintf(l.reason, sizeof(l.reason), "%s", err.message);
			if (!g.json)
				say(src->label, "%s", err.message);
			lookup_done(src, &l, report);
			continue;
		}
		opened = true;
		if ((certs = sk_X509_new_null()) == NULL || (extra = sk_X509_new_null()) == NULL) {
			sk_X509_free(certs);
			lookup_done(src, &l, report);
			smime_error_set(&err, SMIME_E_INTERNAL, "out of memory");
			rc = fail("encrypt", &err);
			break;
		}
		code = src->search(ctx, addrs[i], certs, extra, &answers, &l, &err);
		if (code == 0 && answers == 0) {
			l.status = "not-found";
			snprintf(l.reason, sizeof(l.reason), "%s", src->none);
			if (!g.json && !g.quiet)
				say(src->label, "%s: %s", addrs[i], src->none);
		} else if (code == 0) {
			if ((code = take_certs(src, ks, addrs[i], certs, extra, store, ks_untrusted, &l,
			    &err)) != 0) {
				sk_X509_pop_free(certs, X509_free);
				sk_X509_pop_free(extra, X509_free);
				lookup_done(src, &l, report);
				rc = fail("encrypt", &err);
				break;
			}
			if (strcmp(l.status, "found") == 0) {
				changed = true;
				found[i] = true;
			} else if (strcmp(l.status, "not-found") == 0) {
				snprintf(l.reason, sizeof(l.reason), "%s", answers == 1 ?
				    src->empty_one : src->empty_many);
				if (!g.json && !g.quiet)
					say(src->label, "%s: %s", addrs[i], l.reason);
			} else if (json_array_size(l.refused) > 1 && !g.json) {
				say(src->label, "%s: %s", addrs[i], l.reason);
			}
		} else {
			l.status = "error";
			snprintf(l.reason, sizeof(l.reason), "%s", err.message);
			if (!g.json)
				say(src->label, "%s: %s", addrs[i], err.message);
			/* The connection is gone or the source is wrong: the others would fail alike. */
			if (code == SMIME_E_IO || code == SMIME_E_USAGE)
				broken = true;
		}
		sk_X509_pop_free(certs, X509_free);
		sk_X509_pop_free(extra, X509_free);
		lookup_done(src, &l, report);
	}
	if (opened)
		src->close(ctx);
	(void)sigaction(SIGPIPE, &old_pipe, NULL);
	if (rc == EXIT_OK && changed && smime_keystore_commit(ks, &err) != 0)
		rc = fail("encrypt", &err);
	X509_STORE_free(store);
	sk_X509_pop_free(ks_untrusted, X509_free);
	return rc;
}
