/*
 * Looking into messages without keys: the MIME and CMS structure of a
 * message (smime inspect), and the certificates and keys a message carries
 * (import from an .eml).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "internal.h"

void
smime_inspection_free(struct smime_inspection *in)
{
	if (in == NULL)
		return;
	for (size_t i = 0; i < in->n_nodes; i++) {
		free(in->nodes[i].part);
		free(in->nodes[i].content_type);
		free(in->nodes[i].filename);
		free(in->nodes[i].detail);
	}
	free(in->nodes);
	free(in);
}

/* One line describing a CMS structure. */
static char *
cms_detail(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	CMS_ContentInfo *cms;
	char buf[1024];
	int nid;

	if (len == 0 || len > LONG_MAX || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		return strdup("not valid CMS (RFC 5652)");
	}
	nid = OBJ_obj2nid(CMS_get0_type(cms));
	if (nid == NID_pkcs7_signed) {
		STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
		STACK_OF(X509) *certs = CMS_get1_certs(cms);
		size_t used = (size_t)snprintf(buf, sizeof(buf), "signedData, %s, %d signer(s), "
		    "%d certificate(s)", CMS_is_detached(cms) ? "detached" : "with content",
		    sis ? sk_CMS_SignerInfo_num(sis) : 0, certs ? sk_X509_num(certs) : 0);
		for (int i = 0; sis != NULL && i < sk_CMS_SignerInfo_num(sis) && i < 8; i++) {
			X509_ALGOR *dig = NULL, *sig = NULL;
			const ASN1_OBJECT *o1, *o2;
			CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, i), NULL, NULL, &dig, &sig);
			X509_ALGOR_get0(&o1, NULL, NULL, dig);
			X509_ALGOR_get0(&o2, NULL, NULL, sig);
			if (used < sizeof(buf))
				used += (size_t)snprintf(buf + used, sizeof(buf) - used, "; signer %d: %s/%s",
				    i + 1, OBJ_nid2sn(OBJ_obj2nid(o1)), OBJ_nid2sn(OBJ_obj2nid(o2)));
		}
		sk_X509_pop_free(certs, X509_free);
	} else if (nid == NID_pkcs7_enveloped || nid == NID_id_smime_ct_authEnvelopedData) {
		STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
		int cn = cms_content_cipher_nid(der, len);
		snprintf(buf, sizeof(buf), "%s, cipher %s, %d recipient info(s)",
		    nid == NID_pkcs7_enveloped ? "envelopedData" : "authEnvelopedData",
		    cn != NID_undef ? OBJ_nid2sn(cn) : "unknown", ris ? sk_CMS_RecipientInfo_num(ris) : 0);
	} else {
		snprintf(buf, sizeof(buf), "%s", nid != NID_undef ? OBJ_nid2ln(nid) : "unknown content type");
	}
	CMS_ContentInfo_free(cms);
	return strdup(buf);
}

struct walk {
	struct smime_inspection *ins;
	struct smime_bag *bag;
	const char *password;
	int count;
	int rc;
	struct smime_error *err;
};

static void
add_node(struct walk *w, const char *path, int depth, GMimeObject *obj, char *detail)
{
	struct smime_node *nn;
	char *type = mime_type_of(obj);
	const char *st = g_mime_object_get_content_type_parameter(obj, "smime-type");
	char full[256];

	nn = realloc(w->ins->nodes, (w->ins->n_nodes + 1) * sizeof(*nn));
	if (nn == NULL) {
		g_free(type);
		free(detail);
		return;
	}
	w->ins->nodes = nn;
	nn = &w->ins->nodes[w->ins->n_nodes++];
	memset(nn, 0, sizeof(*nn));
	if (st != NULL)
		snprintf(full, sizeof(full), "%s; smime-type=%s", type, st);
	else
		snprintf(full, sizeof(full), "%s", type);
	nn->part = strdup(path);
	nn->depth = depth;
	nn->content_type = strdup(full);
	if (GMIME_IS_PART(obj) && g_mime_part_get_filename(GMIME_PART(obj)) != NULL)
		nn->filename = strdup(g_mime_part_get_filename(GMIME_PART(obj)));
	nn->detail = detail;
	g_free(type);
}

static bool
has_suffix_ci(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && g_ascii_strcasecmp(s + a - b, suffix) == 0;
}

static void
walk(struct walk *w, GMimeObject *obj, const char *path, int depth)
{
	char *type;

	if (w->rc != 0 || depth > SMIME_MSG_MAX_DEPTH * 4 || ++w->count > SMIME_MSG_MAX_PARTS)
		return;
	type = mime_type_of(obj);
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		if (w->ins != NULL)
			add_node(w, path, depth, obj, NULL);
		for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
			char cp[128];
			if (path[0] == '\0')
				snprintf(cp, sizeof(cp), "%d", i + 1);
			else
				snprintf(cp, sizeof(cp), "%s.%d", path, i + 1);
			walk(w, g_mime_multipart_get_part(mp, i), cp, depth + 1);
		}
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (w->ins != NULL)
			add_node(w, path, depth, obj, NULL);
		if (m != NULL && g_mime_message_get_mime_part(m) != NULL) {
			char cp[128];
			snprintf(cp, sizeof(cp), "%s%s1", path, path[0] ? "." : "");
			walk(w, g_mime_message_get_mime_part(m), cp, depth + 1);
		}
	} else if (GMIME_IS_PART(obj)) {
		bool p7 = strstr(type, "pkcs7") != NULL;
		const char *fn = g_mime_part_get_filename(GMIME_PART(obj));
		bool keyfile = fn && (has_suffix_ci(fn, ".p12") || has_suffix_ci(fn, ".pfx"));
		bool certfile = fn && (has_suffix_ci(fn, ".cer") || has_suffix_ci(fn, ".crt") ||
		    has_suffix_ci(fn, ".pem") || has_suffix_ci(fn, ".der") ||
		    has_suffix_ci(fn, ".p7b") || has_suffix_ci(fn, ".p7c"));
		struct buf content;
		struct smime_error e2;

		buf_init(&content, SMIME_MSG_MAX_SIZE);
		if ((p7 || keyfile || certfile ||
		    strcmp(type, "application/x-pkcs12") == 0 ||
		    strcmp(type, "application/pkcs12") == 0 ||
		    strcmp(type, "application/pkix-cert") == 0 ||
		    strcmp(type, "application/x-x509-ca-cert") == 0 ||
		    strcmp(type, "application/x-x509-user-cert") == 0) &&
		    mime_part_content(GMIME_PART(obj), SMIME_MSG_MAX_SIZE, &content, &e2) == 0) {
			if (w->ins != NULL) {
				add_node(w, path, depth, obj, p7 ? cms_detail(content.data, content.len) : NULL);
			} else if (p7 && !keyfile) {
				const unsigned char *p = content.data;
				CMS_ContentInfo *cms = content.len > 0 && content.len < LONG_MAX ?
				    d2i_CMS_ContentInfo(NULL, &p, (long)content.len) : NULL;
				if (cms != NULL && OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_signed) {
					STACK_OF(X509) *certs = CMS_get1_certs(cms);
					for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++) {
						X509 *c = sk_X509_value(certs, i);
						X509_up_ref(c);
						sk_X509_push(w->bag->certs, c);
					}
					sk_X509_pop_free(certs, X509_free);
				}
				ERR_clear_error();
				CMS_ContentInfo_free(cms);
			} else {
				int r = smime_bag_load(w->bag, content.data, content.len, w->password, w->err);
				if (r != 0)
					w->rc = r;
			}
		} else if (w->ins != NULL) {
			add_node(w, path, depth, obj, NULL);
		}
		buf_free(&content);
	}
	g_free(type);
}

/* Parse from a seekable stream: part contents are not copied into memory. */
static int
parse_input(BIO *in, GMimeStream **src_r, GMimeMessage **msg_r, struct smime_error *err)
{
	int rc;

	smime_init();
	if ((rc = source_open(in, src_r, err)) != 0)
		return rc;
	return mime_parse_stream(*src_r, msg_r, err);
}

int
smime_msg_inspect(BIO *in, struct smime_inspection **inspection_r, struct smime_error *err)
{
	GMimeStream *src = NULL;
	GMimeMessage *msg = NULL;
	struct walk w = { 0 };
	int rc;

	*inspection_r = NULL;
	if ((rc = parse_input(in, &src, &msg, err)) != 0)
		goto out;
	w.ins = calloc(1, sizeof(*w.ins));
	w.err = err;
	if (w.ins == NULL) {
		rc = smime_error_set(err, SMIME_E_INTERNAL, "out of memory");
		goto out;
	}
	walk(&w, g_mime_message_get_mime_part(msg), "", 0);
	*inspection_r = w.ins;
out:
	if (msg != NULL)
		g_object_unref(msg);
	if (src != NULL)
		g_object_unref(src);
	return rc;
}

int
smime_msg_extract(BIO *in, const char *password, struct smime_bag *bag, struct smime_error *err)
{
	GMimeStream *src = NULL;
	GMimeMessage *msg = NULL;
	struct walk w = { 0 };
	int rc;

	if ((rc = parse_input(in, &src, &msg, err)) != 0)
		goto out;
	w.bag = bag;
	w.password = password;
	w.err = err;
	walk(&w, g_mime_message_get_mime_part(msg), "", 0);
	rc = w.rc;
	if (rc == 0 && sk_X509_num(bag->certs) == 0)
		rc = smime_error_set(err, SMIME_E_NOTFOUND,
		    "the message carries no certificate, PKCS#12 attachment or signature");
out:
	if (msg != NULL)
		g_object_unref(msg);
	if (src != NULL)
		g_object_unref(src);
	return rc;
}
