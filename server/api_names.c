/*
 * smimed: the names beside the ids of an answer.  People know users by
 * their addresses and devices by their names; an answer that names a
 * user or a device by id carries those too (user_email, user_name,
 * device_name), read in the request's transaction.
 */
#include "api.h"

void
api_names(struct service *svc, struct store_tx *tx, json_t *obj)
{
	const char *user = json_string_value(json_object_get(obj, "user"));
	const char *device = json_string_value(json_object_get(obj, "device"));
	struct smime_error err;

	if (user != NULL && *user != '\0') {
		struct store_user u = { 0 };
		if (svc->be->user_get(tx, user, &u, &err) == 0 && u.n_emails > 0) {
			json_object_set_new(obj, "user_email", json_string(u.emails[0]));
			json_object_set_new(obj, "user_name", json_string(u.name != NULL ? u.name : ""));
		}
		store_user_clear(&u);
	}
	if (device != NULL && *device != '\0') {
		struct store_device d = { 0 };
		if (svc->be->device_get(tx, device, &d, &err) == 0)
			json_object_set_new(obj, "device_name", json_string(d.name != NULL ? d.name :
			    ""));
		store_device_clear(&d);
	}
}
