/*
 * smimed: the decisions of two-person key recovery (recovery_approval = 2),
 * apart from HTTP and the store so that they are tested alone.
 *
 * A request (store.h, struct store_recovery) is made by one token, approved
 * by a second, different one, and exported once by the token that made it,
 * all before it expires.
 */
#ifndef SMIMED_RECOVERY_H
#define SMIMED_RECOVERY_H

#include <stdint.h>

#include "store.h"

/*
 * Whether actor may move r to want (RECOVERY_APPROVED: approve it;
 * RECOVERY_EXPORTED: export it) at now: NULL when it may, else why not,
 * with the HTTP status in *status_r (403 for the wrong token, 409 for the
 * request's state or its expiry).  A request expires at r->expires: at
 * that second it is refused already.
 */
const char *recovery_refusal(const struct store_recovery *r, const char *actor,
    enum recovery_status want, int64_t now, int *status_r);

/* How far a token's makers are followed: tokens are few and made by hand. */
#define RECOVERY_LINEAGE_MAX 16

/* Read the token id into *t_r (store.h, token_get); NOTFOUND when there is none. */
typedef int (*recovery_token_get_fn)(void *arg, const char *id, struct store_token *t_r,
    struct smime_error *err);

/*
 * Whether approver (an actor, "token:ID") is a second person for r as far
 * as tokens can tell: *why_r is NULL when it is, else why not (HTTP 403).
 * Refused: the requester's own token; a token the requester made, or one
 * made by a token it made, and so on; a token that made the requester's
 * (or its maker, and so on); a token made at or after the request's
 * second; and, since then nothing can be told, an actor that is no token,
 * a token whose makers are unknown, missing, looping or deeper than
 * RECOVERY_LINEAGE_MAX.  Two tokens that one token made (the first
 * start's, typically) pass: their maker saw both secrets, which tokens
 * cannot tell (smimed(8)).  get reads a token (arg is its own); it is
 * called at most RECOVERY_LINEAGE_MAX + 1 times for each of the two.
 * Non-zero only when get fails otherwise than NOTFOUND.
 */
int recovery_lineage_refusal(const struct store_recovery *r, const char *approver,
    recovery_token_get_fn get, void *arg, const char **why_r, struct smime_error *err);

#endif
