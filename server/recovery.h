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

#endif
