/*
 * smimed: validation against the trust collection (the service's own CAs
 * and the imported roots and intermediates, api_trust.c).  Every
 * certificate the service imports or publishes goes through here.
 */
#ifndef SMIMED_TRUST_H
#define SMIMED_TRUST_H

#include <stdint.h>

#include <openssl/x509.h>

#include "service.h"

/*
 * Validate cert with untrusted (intermediates that came with it, may be
 * NULL): a chain to a certificate of the collection (an intermediate of
 * the collection is an anchor too), a subject key identifier, EKU
 * emailProtection (or none), and nothing on the distrust list: neither
 * cert, nor a CA of its path, nor the issuer of the path's top (a
 * distrusted root above a trusted intermediate), even when trusted too.  Validity is checked at `at` (a moment within
 * the certificate's own validity, for an expired one kept for history).
 * SMIME_E_BADSIG with the reason when it does not validate, SMIME_E_POLICY
 * for a missing subject key identifier or EKU.  chain_r (may be NULL)
 * receives the CA certificates of the path above cert that are not
 * self-signed: what a client needs beside its own anchors.
 */
int trust_verify(struct service *svc, X509 *cert, STACK_OF(X509) *untrusted, int64_t at,
    STACK_OF(X509) **chain_r, struct smime_error *err);

/*
 * Why x may not be trusted, or NULL: x itself, or a certificate with its
 * subject and public key (a re-issue, a cross-certificate), is on the
 * distrust list.  The text (malloc'd, freed by the caller) names the
 * distrusted certificate.  SMIME_E_* with err when the lists cannot be read.
 */
int trust_distrusted(struct service *svc, X509 *x, char **why_r, struct smime_error *err);

/* Drop the collection kept between changes (the store was replaced). */
void trust_forget(struct service *svc);

#endif
