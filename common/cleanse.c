/* Freeing what may have held secrets (cleanse.h). */
#include <malloc.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "cleanse.h"

void
cleansing_free(void *p)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, malloc_usable_size(p));
		free(p);
	}
}
