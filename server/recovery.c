/* smimed: the decisions of two-person key recovery (recovery.h). */
#include <string.h>

#include "recovery.h"

const char *
recovery_refusal(const struct store_recovery *r, const char *actor, enum recovery_status want,
    int64_t now, int *status_r)
{
	*status_r = 409;
	if (r->status == RECOVERY_EXPORTED)
		return "it was exported already: a request gives one export";
	/* Expired before anything else: an old request is asked for again. */
	if (r->expires <= now)
		return "it expired: ask again";
	if (want == RECOVERY_APPROVED) {
		if (r->status != RECOVERY_PENDING)
			return "it is approved already";
		/* Two people: the approver is another token than the requester. */
		if (strcmp(r->requester, actor) == 0) {
			*status_r = 403;
			return "the requester cannot approve their own request: a second, different "
			    "recovery or admin token must";
		}
		return NULL;
	}
	/* The export goes to the requester alone, so the approver cannot
	 * recover keys by approving a request and then taking it. */
	if (strcmp(r->requester, actor) != 0) {
		*status_r = 403;
		return "only the token that asked for it exports it";
	}
	if (r->status != RECOVERY_APPROVED)
		return "it waits for the approval of a second token";
	return NULL;
}
