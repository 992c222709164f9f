/* smimed: what every store backend shares: the registry, freeing records, enum names. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store.h"

static const struct store_backend *const backends[] = {
	&store_sqlite,
};

const struct store_backend *
store_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
store_user_clear(struct store_user *u)
{
	free(u->name);
	strv_free(u->emails, u->n_emails);
	strv_free(u->groups, u->n_groups);
	memset(u, 0, sizeof(*u));
}

void
store_group_clear(struct store_group *gr)
{
	free(gr->name);
	free(gr->description);
	memset(gr, 0, sizeof(*gr));
}

void
store_device_clear(struct store_device *d)
{
	free(d->name);
	free(d->platform);
	memset(d, 0, sizeof(*d));
}

void
store_ca_clear(struct store_ca *ca)
{
	free(ca->key_alg);
	free(ca->cert_der);
	if (ca->key_wrapped != NULL)
		OPENSSL_cleanse(ca->key_wrapped, ca->key_wrapped_len);
	free(ca->key_wrapped);
	free(ca->crl_der);
	memset(ca, 0, sizeof(*ca));
}

void
store_profile_clear(struct store_profile *p)
{
	free(p->br_profile);
	free(p->key_alg);
	memset(p, 0, sizeof(*p));
}

void
store_cert_clear(struct store_cert *c)
{
	free(c->subject);
	free(c->email);
	free(c->der);
	memset(c, 0, sizeof(*c));
}

void
store_token_clear(struct store_token *t)
{
	free(t->name);
	memset(t, 0, sizeof(*t));
}

void
store_audit_clear(struct store_audit *a)
{
	free(a->actor);
	free(a->action);
	free(a->object);
	free(a->detail);
	free(a->user_id);
	memset(a, 0, sizeof(*a));
}

void
store_trust_clear(struct store_trust *t)
{
	free(t->subject);
	free(t->der);
	memset(t, 0, sizeof(*t));
}

void
store_publish_clear(struct store_publish *p)
{
	free(p->error);
	memset(p, 0, sizeof(*p));
}

void
store_scep_profile_clear(struct store_scep_profile *p)
{
	free(p->ec_curves);
	free(p->subject);
	memset(p, 0, sizeof(*p));
}

void
store_scep_challenge_clear(struct store_scep_challenge *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}

void
store_scep_tx_clear(struct store_scep_tx *t)
{
	free(t->csr);
	free(t->error);
	memset(t, 0, sizeof(*t));
}

void
store_scep_ra_clear(struct store_scep_ra *ra)
{
	free(ra->cert_der);
	if (ra->key_wrapped != NULL)
		OPENSSL_cleanse(ra->key_wrapped, ra->key_wrapped_len);
	free(ra->key_wrapped);
	memset(ra, 0, sizeof(*ra));
}

void
store_recovery_clear(struct store_recovery *r)
{
	free(r->reason);
	free(r->requester);
	free(r->approver);
	memset(r, 0, sizeof(*r));
}

#define ARRAY_FREE(fn, type, clear) \
	void fn(type *v, size_t n) \
	{ \
		for (size_t i = 0; v != NULL && i < n; i++) \
			clear(&v[i]); \
		free(v); \
	}
ARRAY_FREE(store_users_free, struct store_user, store_user_clear)
ARRAY_FREE(store_groups_free, struct store_group, store_group_clear)
ARRAY_FREE(store_devices_free, struct store_device, store_device_clear)
ARRAY_FREE(store_cas_free, struct store_ca, store_ca_clear)
ARRAY_FREE(store_profiles_free, struct store_profile, store_profile_clear)
ARRAY_FREE(store_certs_free, struct store_cert, store_cert_clear)
ARRAY_FREE(store_tokens_free, struct store_token, store_token_clear)
ARRAY_FREE(store_audits_free, struct store_audit, store_audit_clear)
ARRAY_FREE(store_trusts_free, struct store_trust, store_trust_clear)
ARRAY_FREE(store_publishes_free, struct store_publish, store_publish_clear)
ARRAY_FREE(store_scep_profiles_free, struct store_scep_profile, store_scep_profile_clear)
ARRAY_FREE(store_scep_txs_free, struct store_scep_tx, store_scep_tx_clear)
ARRAY_FREE(store_scep_ras_free, struct store_scep_ra, store_scep_ra_clear)
ARRAY_FREE(store_recoveries_free, struct store_recovery, store_recovery_clear)

static const char *const purpose_names[] = { NULL, "signing", "encryption", "dual" };
static const char *const source_names[] = { NULL, "issued", "imported", "scep", "derived" };
static const char *const status_names[] = { NULL, "active", "superseded", "expired", "revoked" };

const char *
cert_purpose_name(enum cert_purpose p)
{
	return p >= PURPOSE_SIGNING && p <= PURPOSE_DUAL ? purpose_names[p] : "unknown";
}

const char *
cert_source_name(enum cert_source s)
{
	return s >= SOURCE_ISSUED && s <= SOURCE_DERIVED ? source_names[s] : "unknown";
}

const char *
cert_status_name(enum cert_status s)
{
	return s >= STATUS_ACTIVE && s <= STATUS_REVOKED ? status_names[s] : "unknown";
}

static const struct {
	enum store_role role;
	const char *name;
} role_names[] = {
	{ ROLE_ADMIN, "admin" }, { ROLE_OPERATOR, "operator" }, { ROLE_RECOVERY, "recovery" },
	{ ROLE_AUDITOR, "auditor" },
};

const char *
store_role_name(enum store_role r)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (role_names[i].role == r)
			return role_names[i].name;
	return "unknown";
}

enum store_role
store_role_parse(const char *s)
{
	for (size_t i = 0; s != NULL && i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(s, role_names[i].name) == 0)
			return role_names[i].role;
	return 0;
}

const char *
recovery_status_name(int s)
{
	static const char *const names[] = { NULL, "pending", "approved", "exported" };

	return s >= RECOVERY_PENDING && s <= RECOVERY_EXPORTED ? names[s] : "unknown";
}

enum cert_purpose
cert_purpose_parse(const char *s)
{
	for (int i = PURPOSE_SIGNING; i <= PURPOSE_DUAL; i++)
		if (s != NULL && strcmp(s, purpose_names[i]) == 0)
			return (enum cert_purpose)i;
	return 0;
}

enum cert_status
cert_status_parse(const char *s)
{
	for (int i = STATUS_ACTIVE; i <= STATUS_REVOKED; i++)
		if (s != NULL && strcmp(s, status_names[i]) == 0)
			return (enum cert_status)i;
	return 0;
}
